using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;

// The stages of a snapshot listing, timed apart in one process (issue 8): the libvirt calls alone (the XML
// string not decoded), the same with the XML decoded, our reading of it, and the rest of the round trips.
// Usage: StagesBenchmark loop|noloop DOMAIN [runs] [in flight]. "loop" registers libvirt's event loop (and a thread
// running it) before opening qemu:///system, as a connection that receives events is opened; "noloop" does not, as
// a lean connection is. Each stage: medians of the runs after one warm-up; CPU is this whole process's (user +
// system), which includes the event loop thread's wake-ups.
var mode = args[0];
var domainName = args[1];
var runs = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 9;
var inFlight = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 4;
Virt.Initialize();
Virt.SilenceErrorPrinting();
if (mode == "loop")
{
    Virt.EventRegisterDefaultImpl();
    new Thread(() => { while (true) Virt.EventRunDefaultImpl(out _); }) { IsBackground = true }.Start();
}
using var connection = Virt.ConnectOpen("qemu:///system");
using var domain = Virt.DomainLookupByName(connection, domainName);
var self = Process.GetCurrentProcess();
var snapshots = Virt.DomainListAllSnapshots(domain, DomainSnapshotListFlags.Topological, domainName);
var parallel = new ParallelOptions { MaxDegreeOfParallelism = inFlight };
Console.WriteLine($"{mode}: {snapshots.Length} snapshots of {domainName}, {runs} runs, {inFlight} calls in flight");

Stage("list + names", () =>
{
    var all = Virt.DomainListAllSnapshots(domain, DomainSnapshotListFlags.Topological, domainName);
    foreach (var s in all)
    {
        Virt.DomainSnapshotGetName(s);
        s.Dispose();
    }
});
Stage("XML calls, one at a time, not decoded", () =>
{
    foreach (var s in snapshots) RawXml.Free(RawXml.Get(s));
});
Stage($"XML calls, {inFlight} in flight, not decoded", () => Parallel.For(0, snapshots.Length, parallel, i => RawXml.Free(RawXml.Get(snapshots[i]))));
Stage($"XML calls, {inFlight} in flight, decoded", () => Parallel.For(0, snapshots.Length, parallel, i => Virt.DomainSnapshotGetXmlDesc(snapshots[i], null)));
var xml = snapshots.Select(s => Virt.DomainSnapshotGetXmlDesc(s, null)).ToArray();
Stage("SnapshotXml.ParseSummary alone", () =>
{
    foreach (var x in xml) SnapshotXml.ParseSummary(x, null);
});
Stage($"XML calls, {inFlight} in flight, decoded and read", () => Parallel.For(0, snapshots.Length, parallel, i => SnapshotXml.ParseSummary(Virt.DomainSnapshotGetXmlDesc(snapshots[i], null), null)));
Console.WriteLine($"  (the XML of one snapshot: {xml.Select(x => x.Length).DefaultIfEmpty().Max()} characters at most)");
foreach (var s in snapshots) s.Dispose();

void Stage(string label, Action work)
{
    work();
    var wall = new double[runs];
    var cpu = new double[runs];
    var allocated = GC.GetTotalAllocatedBytes(true);
    for (var r = 0; r < runs; r++)
    {
        self.Refresh();
        var before = self.TotalProcessorTime.TotalMilliseconds;
        var clock = Stopwatch.StartNew();
        work();
        wall[r] = clock.Elapsed.TotalMilliseconds;
        self.Refresh();
        cpu[r] = self.TotalProcessorTime.TotalMilliseconds - before;
    }
    Array.Sort(wall);
    Array.Sort(cpu);
    var kib = (GC.GetTotalAllocatedBytes(true) - allocated) / runs / 1024;
    Console.WriteLine(FormattableString.Invariant($"  {label,-48} wall {wall[runs / 2],7:F1} ms   CPU {cpu[runs / 2],7:F1} ms   allocated {kib,6} KiB"));
}

/// <summary>virDomainSnapshotGetXMLDesc without the string's decoding: the call's own cost.</summary>
internal static class RawXml
{
    [DllImport("libvirt.so.0")] private static extern IntPtr virDomainSnapshotGetXMLDesc(IntPtr snapshot, uint flags);
    [DllImport("libc")] public static extern void free(IntPtr p);

    public static IntPtr Get(DomainSnapshotHandle snapshot)
    {
        var added = false;
        snapshot.DangerousAddRef(ref added);
        try
        {
            return virDomainSnapshotGetXMLDesc(snapshot.DangerousGetHandle(), 0);
        }
        finally
        {
            snapshot.DangerousRelease();
        }
    }

    public static void Free(IntPtr p) => free(p);
}
