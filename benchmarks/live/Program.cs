using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using System.Xml.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;

// Measures, side by side in one run, on the same 1 GiB layer:
//  (a) the time from a block job's end (the BLOCK_JOB_2 COMPLETED event as this process's event loop received it,
//      and as an independent `virsh event --timestamp` observer printed it) to the waiting call's return;
//  (b) the wall time of LiveEngine.BlockCommit against `virsh blockcommit --wait` for the same commit.
// Each run gets a fresh copy of the chain base (empty) <- layer (1 GiB of data) <- top (active) and a fresh TCG domain.

const string Uri = "qemu:///system";
var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
var work = Path.Combine(Path.GetTempPath(), $"kvmsnap-bench-{Environment.ProcessId}");
Directory.CreateDirectory(work);
var template = Path.Combine(work, "template");
Directory.CreateDirectory(template);

try
{
    Console.WriteLine($"libvirt {LiveEngine.LibvirtVersion / 1_000_000}.{LiveEngine.LibvirtVersion / 1000 % 1000}, {runs} run(s) per tool, work dir {work}");
    Run("qemu-img", "create", "-q", "-f", "qcow2", Path.Combine(template, "base.qcow2"), "2G");
    Run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", Path.Combine(template, "layer.qcow2"));
    Run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1G", Path.Combine(template, "layer.qcow2"));
    Run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "layer.qcow2", "-F", "qcow2", Path.Combine(template, "top.qcow2"));

    var engine = LiveEngine.Default;
    engine.GetDomainNames(Uri); // connection, event loop and event registration are set up before anything is timed

    var events = new List<BlockJobEvent>();
    LiveEngine.BlockJobEventReceived += e => { lock (events) events.Add(e); };

    var rows = new List<(string Tool, double WallMs, double EventToReturnMs, double ObserverToReturnMs)>();
    // Round 0 warms page cache and JIT for both tools and is not counted.
    for (var i = 0; i <= runs; i++)
    {
        foreach (var tool in new[] { "engine", "virsh" })
        {
            var run = Path.Combine(work, $"{tool}-{i}");
            Directory.CreateDirectory(run);
            foreach (var f in Directory.GetFiles(template)) File.Copy(f, Path.Combine(run, Path.GetFileName(f)));
            var name = $"kvmsnap-bench-{Environment.ProcessId}-{tool}-{i}";
            var xml = Path.Combine(run, "domain.xml");
            File.WriteAllText(xml, DomainXml(name, Path.Combine(run, "top.qcow2")));
            Run("virsh", "-c", Uri, "create", xml);
            using var observer = StartObserver(name);
            try
            {
                var layer = Path.Combine(run, "layer.qcow2");
                var baseImage = Path.Combine(run, "base.qcow2");
                var clock = Stopwatch.StartNew();
                if (tool == "engine")
                {
                    engine.BlockCommit(Uri, new BlockCommitRequest { Domain = name, Disk = "vda", Top = layer, Base = baseImage }, NullOperationContext.Instance);
                }
                else
                {
                    Run("virsh", "-c", Uri, "blockcommit", name, "vda", "--top", layer, "--base", baseImage, "--wait");
                }
                var returned = Stopwatch.GetTimestamp();
                var returnedUtc = DateTime.UtcNow;
                var wall = clock.Elapsed.TotalMilliseconds;

                BlockJobEvent completed;
                lock (events) completed = events.Single(e => e.Domain == name && e.Status == BlockJobEventStatus.Completed);
                var eventToReturn = Stopwatch.GetElapsedTime(completed.Timestamp, returned).TotalMilliseconds;
                var observed = observer.CompletedAtUtc(TimeSpan.FromSeconds(5));
                var observerToReturn = observed is null ? double.NaN : (returnedUtc - observed.Value).TotalMilliseconds;

                var chain = engine.GetChains(Uri, name, "vda", NullOperationContext.Instance).Single();
                if (chain.Depth != 2 || chain.Base.Path != baseImage) throw new InvalidOperationException($"{tool}: unexpected chain after the commit: {chain}");
                Run("qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 1023M 1M", baseImage); // the data reached the base

                if (i > 0) rows.Add((tool, wall, eventToReturn, observerToReturn));
                Console.WriteLine($"{(i == 0 ? "warm-up" : $"run {i}"),-7} {tool,-6}  wall {wall,8:0.0} ms   event->return {eventToReturn,7:0.00} ms   virsh-event observer->return {observerToReturn,6:0} ms");
            }
            finally
            {
                Run("virsh", "-c", Uri, "destroy", name);
                Directory.Delete(run, recursive: true);
            }
        }
    }

    static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
    var e = rows.Where(r => r.Tool == "engine").ToList();
    var s = rows.Where(r => r.Tool == "virsh").ToList();
    Console.WriteLine();
    Console.WriteLine("median over runs              LiveEngine.BlockCommit   virsh blockcommit --wait");
    Console.WriteLine($"(b) wall time, 1 GiB commit   {Median(e.Select(r => r.WallMs)),10:0.0} ms            {Median(s.Select(r => r.WallMs)),10:0.0} ms");
    Console.WriteLine($"(a) event -> return           {Median(e.Select(r => r.EventToReturnMs)),10:0.00} ms            {Median(s.Select(r => r.EventToReturnMs)),10:0.00} ms");
    Console.WriteLine($"(a') observer -> return       {Median(e.Select(r => r.ObserverToReturnMs)),10:0} ms            {Median(s.Select(r => r.ObserverToReturnMs)),10:0} ms");
    Console.WriteLine($"ratio engine / virsh (wall): {Median(e.Select(r => r.WallMs)) / Median(s.Select(r => r.WallMs)):0.00}");
    return 0;
}
finally
{
    Directory.Delete(work, recursive: true);
}

static void Run(string program, params string[] args)
{
    var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in args) psi.ArgumentList.Add(a);
    using var p = Process.Start(psi)!;
    var err = p.StandardError.ReadToEndAsync();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0 && args.ElementAtOrDefault(2) != "destroy") throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {err.Result}");
}

static string DomainXml(string name, string top) => new XElement("domain", new XAttribute("type", "qemu"),
    new XElement("name", name),
    new XElement("memory", new XAttribute("unit", "MiB"), "64"),
    new XElement("vcpu", "1"),
    new XElement("os", new XElement("type", new XAttribute("arch", "x86_64"), new XAttribute("machine", "pc"), "hvm")),
    new XElement("devices",
        new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
            new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "qcow2")),
            new XElement("source", new XAttribute("file", top)),
            new XElement("target", new XAttribute("dev", "vda"), new XAttribute("bus", "virtio"))))).ToString();

static EventObserver StartObserver(string domain) => new(domain);

/// <summary>An independent witness: `virsh event --timestamp` in its own process, printing when it saw the event.</summary>
sealed class EventObserver : IDisposable
{
    private readonly Process _process;
    private readonly ManualResetEventSlim _seen = new();
    private DateTime? _completedUtc;

    public EventObserver(string domain)
    {
        var psi = new ProcessStartInfo("virsh") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-c", "qemu:///system", "event", "--domain", domain, "--event", "block-job-2", "--loop", "--timestamp" }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) =>
        {
            // "2026-11-22 19:30:01.123+0000: event 'block-job-2' for domain 'x': Block Commit for vda completed"
            if (e.Data is not { } line || !line.Contains("completed", StringComparison.Ordinal)) return;
            if (DateTime.TryParseExact(line[..28], "yyyy-MM-dd HH:mm:ss.fffzzzz", CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal, out var t))
            {
                _completedUtc = t;
                _seen.Set();
            }
        };
        _process.BeginOutputReadLine();
        Thread.Sleep(300); // let it connect and register before the job starts
    }

    public DateTime? CompletedAtUtc(TimeSpan wait) => _seen.Wait(wait) ? _completedUtc : null;

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill();
        _process.Dispose();
        _seen.Dispose();
    }
}
