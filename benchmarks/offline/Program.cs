// Offline store-scan benchmark.
//
//   dotnet run --project benchmarks/offline --artifacts-path /tmp/art-bench -c Release -- [images] [chains] [templates]
//
// Builds a store of qcow2 images in a temp folder with real qemu-img (default: 1,000 images = 20 shared templates
// + 100 chains of 9-10 overlays each, relative backing names, templates and guests in separate folders), then
// measures in one run:
//   A. OfflineEngine.ScanStore(store, recurse) — native header reads, the whole forest at once;
//   B. one `qemu-img info --backing-chain -U --output=json` per leaf, the way a script would do it;
// checks that both see the same chains, prints both times and the ratio, and removes the store.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Offline;

var images = ArgOr(0, 1000);
var chains = ArgOr(1, 100);
var templates = ArgOr(2, 20);
if (images < chains + templates) throw new ArgumentException("need at least one overlay per chain");

var root = Path.Combine(Path.GetTempPath(), $"kvmsnap-bench-{Guid.NewGuid():N}"[..32]);
Directory.CreateDirectory(Path.Combine(root, "templates"));
Directory.CreateDirectory(Path.Combine(root, "guests"));
try
{
    var leaves = Generate(root, images, chains, templates);
    Console.WriteLine($"store: {images} qcow2 images ({templates} templates, {chains} chains, depth {leaves.Min(l => l.Depth)}-{leaves.Max(l => l.Depth)}) in {root}");

    var engine = OfflineEngine.Default;
    var ctx = NullOperationContext.Instance;
    var scanFirst = Stopwatch.StartNew();
    var forest = engine.ScanStore(root, recurse: true, ctx);
    scanFirst.Stop();
    var repeats = new List<double>();
    for (var i = 0; i < 5; i++)
    {
        var w = Stopwatch.StartNew();
        engine.ScanStore(root, recurse: true, ctx);
        repeats.Add(w.Elapsed.TotalMilliseconds);
    }

    var qemuImg = Stopwatch.StartNew();
    var viaQemuImg = new Dictionary<string, string[]>(StringComparer.Ordinal);
    foreach (var leaf in leaves) viaQemuImg[leaf.Path] = QemuImgChain(leaf.Path);
    qemuImg.Stop();

    // Both must describe the same forest, or the comparison means nothing.
    if (forest.Count != leaves.Count) throw new InvalidOperationException($"ScanStore found {forest.Count} chains, expected {leaves.Count}");
    foreach (var chain in forest)
    {
        var ours = chain.Layers.Select(l => l.Path).ToArray();
        if (!ours.SequenceEqual(viaQemuImg[chain.Path])) throw new InvalidOperationException($"chains differ for {chain.Path}");
    }

    var scanMs = scanFirst.Elapsed.TotalMilliseconds;
    var loopMs = qemuImg.Elapsed.TotalMilliseconds;
    Console.WriteLine(F($"ScanStore (native, first run):        {scanMs,10:F1} ms  ({forest.Count} chains, {forest.Sum(c => c.Depth)} layers)"));
    Console.WriteLine(F($"ScanStore (native, median of 5 more): {Median(repeats),10:F1} ms"));
    Console.WriteLine(F($"qemu-img info --backing-chain loop:   {loopMs,10:F1} ms  ({leaves.Count} calls)"));
    Console.WriteLine(F($"ratio (qemu-img loop / ScanStore first run): {loopMs / scanMs:F1}x"));
    return 0;
}
finally
{
    Directory.Delete(root, recursive: true);
}

static int ArgOr(int index, int fallback)
{
    var args = Environment.GetCommandLineArgs().Skip(1).ToArray();
    return args.Length > index ? int.Parse(args[index], CultureInfo.InvariantCulture) : fallback;
}

static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

static double Median(List<double> values)
{
    var sorted = values.OrderBy(v => v).ToList();
    return sorted[sorted.Count / 2];
}

// Templates first, then each chain's overlays in order (qemu-img create opens the backing file, so parents come first).
static List<(string Path, int Depth)> Generate(string root, int images, int chains, int templates)
{
    for (var t = 0; t < templates; t++) Run("create", "-q", "-f", "qcow2", Path.Combine(root, "templates", $"t{t:D2}.qcow2"), "64M");

    var overlays = images - templates;
    var leaves = new ConcurrentBag<(string, int)>();
    // Chains are independent of one another: build two at a time (the machine has 2 cores).
    Parallel.For(0, chains, new ParallelOptions { MaxDegreeOfParallelism = 2 }, c =>
    {
        var length = overlays / chains + (c < overlays % chains ? 1 : 0);
        var dir = Path.Combine(root, "guests", $"vm{c:D3}");
        Directory.CreateDirectory(dir);
        var backing = $"../../templates/t{c % templates:D2}.qcow2";
        string path = "";
        for (var d = 0; d < length; d++)
        {
            path = Path.Combine(dir, $"vm{c:D3}-{d:D2}.qcow2");
            Run("create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", path);
            backing = Path.GetFileName(path);
        }
        leaves.Add((path, length + 1));
    });
    return leaves.OrderBy(l => l.Item1, StringComparer.Ordinal).ToList();
}

static string[] QemuImgChain(string leaf)
{
    var output = Run("info", "--backing-chain", "-U", "--output=json", leaf);
    using var doc = JsonDocument.Parse(output);
    return doc.RootElement.EnumerateArray().Select(e => Path.GetFullPath(e.GetProperty("filename").GetString()!)).ToArray();
}

static string Run(params string[] args)
{
    var psi = new ProcessStartInfo("qemu-img") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in args) psi.ArgumentList.Add(a);
    using var p = Process.Start(psi)!;
    var stderr = p.StandardError.ReadToEndAsync();
    var stdout = p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"qemu-img {string.Join(' ', args)}: {stderr.Result}");
    return stdout;
}
