using System.Management.Automation;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Base of the cmdlets that work on an image (-Path, parameter set "Path") or on a domain (-Domain, parameter set
/// "Domain"): declares -ConnectionUri for the Domain set once and sends each record to <see cref="ProcessPath"/> or
/// <see cref="ProcessDomain"/> by the effective parameter set (after a positional argument was moved to the
/// parameter it names, see <see cref="KvmCmdlet.EffectiveParameterSet"/>). A cmdlet with more sets handles them in
/// <see cref="ProcessOtherSet"/>.
/// </summary>
public abstract class KvmPathOrDomainCmdlet : KvmCmdlet
{
    protected const string PathSet = "Path";
    protected const string DomainSet = "Domain";

    /// <summary>The libvirt URIs, one per host; none means $env:LIBVIRT_DEFAULT_URI, then libvirt's own default.
    /// Several hosts are worked on at once (-ThrottleLimit at a time); one that fails is an error naming it.</summary>
    [Parameter(ParameterSetName = DomainSet, ValueFromPipelineByPropertyName = true)]
    public string[]? ConnectionUri { get; set; }

    /// <summary>How many hosts are worked on at the same time (default 5, like ForEach-Object -Parallel).</summary>
    [Parameter(ParameterSetName = DomainSet)]
    [ValidateRange(1, 64)]
    public int ThrottleLimit { get; set; } = Live.HostFanOut.DefaultThrottleLimit;

    protected sealed override void ProcessRecord()
    {
        switch (EffectiveParameterSet)
        {
            case PathSet:
                ProcessPath();
                break;
            case DomainSet:
                ForEachHost(ConnectionUri, ThrottleLimit, ProcessDomain);
                break;
            default:
                ProcessOtherSet(EffectiveParameterSet);
                break;
        }
    }

    /// <summary>One record of the Path set: the image files named by -Path.</summary>
    protected abstract void ProcessPath();

    /// <summary>One record of the Domain set on one host: the domain named by -Domain, through <see cref="KvmCmdlet.HostUri"/>.</summary>
    protected abstract void ProcessDomain();

    /// <summary>A record of a parameter set other than Path and Domain; a cmdlet that declares one overrides this.</summary>
    protected virtual void ProcessOtherSet(string parameterSet)
        => throw new PSNotSupportedException($"{MyInvocation.MyCommand.Name} has no parameter set '{parameterSet}'.");
}
