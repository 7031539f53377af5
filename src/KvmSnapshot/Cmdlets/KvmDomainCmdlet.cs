using System.Management.Automation;
using KvmSnapshot.Live;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Base of the cmdlets that work on a domain only: declares -ConnectionUri (in every parameter set, bound by
/// property name; several URIs run per host, -ThrottleLimit at a time) so a cmdlet file holds only what is special
/// to it. The cmdlet's <see cref="ProcessHostRecord"/> runs once per host with <see cref="KvmCmdlet.HostUri"/> set.
/// </summary>
public abstract class KvmDomainCmdlet : KvmCmdlet
{
    /// <summary>The libvirt URIs, one per host; none means $env:LIBVIRT_DEFAULT_URI, then libvirt's own default.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string[]? ConnectionUri { get; set; }

    /// <summary>How many hosts are worked on at the same time (default 5, like ForEach-Object -Parallel).</summary>
    [Parameter]
    [ValidateRange(1, 64)]
    public int ThrottleLimit { get; set; } = HostFanOut.DefaultThrottleLimit;

    protected sealed override void ProcessRecord() => ForEachHost(ConnectionUri, ThrottleLimit, ProcessHostRecord);

    /// <summary>One record on one host (<see cref="KvmCmdlet.HostUri"/>).</summary>
    protected abstract void ProcessHostRecord();
}
