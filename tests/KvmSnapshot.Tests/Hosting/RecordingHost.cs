using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;
using System.Text;

namespace KvmSnapshot.Tests.Hosting;

/// <summary>
/// A host whose UI records what PowerShell writes to it ("What if:" lines, confirmation prompts) and answers
/// confirmation prompts with a chosen answer, so -WhatIf and -Confirm are testable in-process.
/// </summary>
public sealed class RecordingHost : PSHost
{
    private readonly RecordingHostUI _ui = new();
    private readonly Guid _id = Guid.NewGuid();

    public override string Name => "KvmSnapshotTestHost";
    public override Version Version => new(1, 0);
    public override Guid InstanceId => _id;
    public override PSHostUserInterface UI => _ui;
    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;

    public RecordingHostUI Recorder => _ui;

    public override void EnterNestedPrompt() => throw new NotSupportedException();
    public override void ExitNestedPrompt() => throw new NotSupportedException();
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }
    public override void SetShouldExit(int exitCode) { }
}

public sealed class RecordingHostUI : PSHostUserInterface
{
    private readonly StringBuilder _text = new();
    private readonly object _gate = new();

    /// <summary>Index of the choice PromptForChoice answers (0 = "Yes" in ShouldProcess prompts, 2 = "No").</summary>
    public int ChoiceAnswer { get; set; }

    /// <summary>Answers for the next prompts, in order; once empty, <see cref="ChoiceAnswer"/> answers.</summary>
    public Queue<int> ChoiceAnswers { get; } = new();

    public List<string> Prompts { get; } = new();

    public string Text { get { lock (_gate) return _text.ToString(); } }

    public override PSHostRawUserInterface? RawUI => null;

    public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
    {
        lock (_gate)
        {
            Prompts.Add(caption + ": " + message);
            return ChoiceAnswers.Count > 0 ? ChoiceAnswers.Dequeue() : ChoiceAnswer;
        }
    }

    public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions)
        => throw new NotSupportedException("The test host does not prompt for values.");
    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw new NotSupportedException();
    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException();
    public override string ReadLine() => string.Empty;
    public override SecureString ReadLineAsSecureString() => new();
    public override void Write(string value) { lock (_gate) _text.Append(value); }
    public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Write(value);
    public override void WriteLine(string value) { lock (_gate) _text.AppendLine(value); }
    public override void WriteErrorLine(string value) => WriteLine(value);
    public override void WriteDebugLine(string message) { }
    public override void WriteProgress(long sourceId, ProgressRecord record) { }
    public override void WriteVerboseLine(string message) { }
    public override void WriteWarningLine(string message) { }
}
