using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

internal sealed partial class LiveEngine
{
    /// <summary>
    /// One domain's facts for Get-KvmDomain: state, persistence, disks, snapshot count, current snapshot, the deepest
    /// disk chain and the block jobs running now. DomainNotFound when there is no such domain.
    /// </summary>
    public KvmDomain GetDomain(string? connectionUri, string domain, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, domain, ctx);
        var state = dom.State;
        var persistent = dom.IsPersistent;
        var disks = DomainXml.Disks(dom.GetXml(), dom.Name);
        var snapshots = dom.ListSnapshots();
        var snapshotCount = snapshots.Length;
        foreach (var s in snapshots) s.Dispose();
        var current = dom.CurrentSnapshotName();
        var catalog = dom.Connection.IsLocal ? _images.NewCatalog(ctx) : null;
        var depth = disks.Where(d => d.Source is not null)
            .Select(d => LiveChains.Build(dom.Name, dom.Connection.Uri, dom.Connection.IsLocal, d, ctx, catalog).Depth)
            .DefaultIfEmpty(0).Max();
        var jobs = dom.IsActive ? disks.Where(d => d.Source is not null).Count(d => dom.BlockJobInfo(d.Target, trace: true) is not null) : 0;
        return new KvmDomain
        {
            Domain = dom.Name,
            ConnectionUri = dom.Connection.Uri,
            State = state.ToString(),
            Persistent = persistent,
            Disks = disks.Select(d => d.Target).ToList(),
            SnapshotCount = snapshotCount,
            CurrentSnapshot = current,
            MaxChainDepth = depth,
            BlockJobCount = jobs,
        };
    }
}
