using System;
using System.Management.Automation;

namespace KvmSnapshot.Cmdlets;

public abstract partial class KvmCmdlet
{
    private bool? _verboseWanted;

    /// <summary>
    /// Whether WriteVerbose would show anything for this call: -Verbose (or -Verbose:$false) when bound, otherwise
    /// $VerbosePreference as the caller's scope sees it (SilentlyContinue and Ignore drop the record; Continue,
    /// Inquire and Stop act on it). Decided once per call on the pipeline thread. When it is false the engine's
    /// per-call reports (one per libvirt call or command line) are dropped where they are made instead of each being
    /// queued to the pipeline thread and woken for: Get-KvmSnapshot -Domain makes one per snapshot (issue 8).
    /// </summary>
    private protected bool VerboseWanted => _verboseWanted ??= DecideVerbose();

    private bool DecideVerbose()
    {
        if (MyInvocation.BoundParameters.TryGetValue("Verbose", out var bound))
        {
            return bound is SwitchParameter s ? s.IsPresent : LanguagePrimitives.IsTrue(bound);
        }
        var preference = GetVariableValue("VerbosePreference");
        if (preference is null) return false;
        if (preference is not ActionPreference value && !LanguagePrimitives.TryConvertTo(preference, out value))
        {
            return true; // unreadable: keep every report, as WriteVerbose would decide
        }
        return value is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore);
    }
}
