using System.Collections.Generic;
using System.Management.Automation;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Remove-KvmOrphanImage: deletes image files nothing uses, by the rules that decide which merged layers a commit or
/// pull deletes (no domain, disk chain, snapshot or other image may use the file). The files given are gathered
/// first and decided together when the pipeline ends, so an overlay and its base may come in any order; each file
/// is asked for (ShouldProcess) and checked again right before it goes. A file something uses is DiskImageInUse and
/// stays.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "KvmOrphanImage", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(void))]
public sealed class RemoveKvmOrphanImageCommand : KvmCmdlet
{
    /// <summary>The libvirt URI whose domains, snapshots and pools must not use a file (one host: the files are this
    /// host's); null means $env:LIBVIRT_DEFAULT_URI, then libvirt's own default.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? ConnectionUri { get; set; }

    private readonly List<string> _paths = new();

    /// <summary>Image files; Get-KvmOrphanImage's objects bind by their Path.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = null!;

    protected override void ProcessRecord()
    {
        foreach (var input in Path)
        {
            foreach (var path in ResolveExistingPaths(input))
            {
                if (!_paths.Contains(path)) _paths.Add(path);
            }
        }
    }

    protected override void EndProcessing()
    {
        if (_paths.Count == 0) return;
        Chains.LayerRemovalPlan? plan = null;
        if (!TryRun(() => plan = RunEngine(ctx => LiveEngine.Default.PlanOrphanRemoval(ConnectionUri, _paths, ctx)))) return;
        foreach (var (path, reason) in plan!.Kept) InUse(path, reason);
        var previewing = false;
        foreach (var path in plan.Candidates)
        {
            // -WhatIf lists every candidate as if the ones before it went; otherwise each is checked again now.
            if (!previewing && plan.WhyKeep(path) is { } why)
            {
                InUse(path, why);
                continue;
            }
            if (!ShouldProcess(path, "Delete orphan image", out var whatIf))
            {
                previewing |= whatIf;
                if (!whatIf) plan.Decline(path);
                continue;
            }
            var kept = RunEngine(ctx => plan.Delete(path, ctx, out var reason) ? null : reason);
            if (kept is not null) InUse(path, kept);
        }
    }

    private void InUse(string path, string reason)
        => WriteError(new KvmSnapshotException(ErrorIds.DiskImageInUse, KvmErrorKind.ResourceBusy, path,
            $"'{path}' was not removed: {reason}.").ToErrorRecord());
}
