using System;
using System.Collections.Generic;
using System.Linq;

namespace KvmSnapshot.Cmdlets;

public abstract partial class KvmCmdlet
{
    /// <summary>
    /// The order of a fan-out's confirmations (-Confirm, ConfirmImpact prompts, -WhatIf lines): the URIs' order,
    /// whatever order the hosts finish planning in. A host's question is asked once every host before it has asked
    /// one or ended; until then it waits (its host thread with it) while the other hosts go on planning. So a prompt
    /// waits only for the planning of the hosts before it, never for their work after their own prompt. Hosts start
    /// in the URIs' order (-ThrottleLimit at a time), so each host before one that asks is running and will ask or end.
    /// Used on the pipeline thread only.
    /// </summary>
    private sealed class QuestionTurns
    {
        private readonly List<(HostRun Run, Action Ask)> _waiting = new();

        public IReadOnlyList<HostRun> Runs { get; set; } = Array.Empty<HostRun>();

        /// <summary>A host's question arrived: asked now if it is its turn, else when it becomes so.</summary>
        public void Wait(HostRun run, Action ask)
        {
            _waiting.Add((run, ask));
            AnswerInTurn();
        }

        /// <summary>Asks every waiting question whose turn has come, lowest URI first.</summary>
        public void AnswerInTurn()
        {
            while (_waiting.Count > 0)
            {
                var next = _waiting.OrderBy(w => w.Run.Index).FirstOrDefault(w => InTurn(w.Run));
                if (next.Run is null) return;
                _waiting.Remove(next);
                next.Run.Asked = true;
                next.Ask();
            }
        }

        private bool InTurn(HostRun run)
        {
            for (var i = 0; i < run.Index; i++)
            {
                if (!Runs[i].Asked && !Runs[i].Done) return false;
            }
            return true;
        }
    }
}
