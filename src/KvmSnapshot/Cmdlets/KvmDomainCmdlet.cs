using System.Management.Automation;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Base of the cmdlets that work on a domain only: declares -ConnectionUri (in every parameter set, bound by
/// property name) so a cmdlet file holds only what is special to it.
/// </summary>
public abstract class KvmDomainCmdlet : KvmCmdlet
{
    /// <summary>The libvirt URI; null means $env:LIBVIRT_DEFAULT_URI, then libvirt's own default.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? ConnectionUri { get; set; }
}
