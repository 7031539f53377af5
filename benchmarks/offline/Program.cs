// Offline store-scan benchmark (issue 8, goal 3).
//
//   dotnet run --project benchmarks/offline --artifacts-path /tmp/art-bench -c Release -- [chains] [depth] [templates] [largeChains] [processes]
//
// Builds stores of qcow2 images in a temp folder (default: 1,000 images = 20 shared templates + 100 chains of 10
// layers, relative backing names, templates and guests in separate folders; and 10,000 images = 1,000 chains of 10).
// qemu-img makes the templates and one overlay per kind of backing name; every other overlay is a copy of one of
// those with its backing name rewritten in place (same length), which is a valid qcow2 overlay (`qemu-img check`
// runs on a sample) and takes milliseconds instead of a qemu-img process per image. Then measures, in one run:
//   A. the first Get-KvmSnapshotChain -Directory after Import-Module in a fresh real pwsh (module from output/),
//      and the median of five later calls in that session; [processes] fresh processes of each pwsh (default 5), in
//      turn, and the median of each figure;
//   B. OfflineEngine.ScanStore in this process: first call and median of five more;
//   C. one `qemu-img info --backing-chain -U --output=json` per leaf, the way a script would do it (1,000 store),
//      three times, the median;
// checks that all see the same chains, prints the times and ratios, and removes the stores.
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

var chains = ArgOr(0, 100);
var depth = ArgOr(1, 10);
var templates = ArgOr(2, 20);
var largeChains = ArgOr(3, 1000);
var processes = Math.Max(1, ArgOr(4, 5));
var repo = FindRepo();

var small = Store.Build(chains, depth, templates);
var large = largeChains > 0 ? Store.Build(largeChains, depth, templates) : null;
try
{
    Console.WriteLine(F($"stores: {small.Images} images ({templates} templates, {chains} chains of {depth} layers with the template)") + (large is null ? "" : F($" and {large.Images} images ({largeChains} chains)")));
    // A scan re-reads files changed within the last two seconds (the header cache's racy window), as it must; a
    // store that was not just written is the case to measure, so let the new files age past that window first.
    System.Threading.Thread.Sleep(KvmSnapshot.Chains.HeaderCache.DefaultRacyWindow + TimeSpan.FromSeconds(1));
    var engine = OfflineEngine.Default;
    var ctx = NullOperationContext.Instance;

    var (firstMs, laterMs, forest) = TimeScans(() => engine.ScanStore(small.Root, recurse: true, ctx));
    var (largeFirst, largeLater, largeForest) = large is null ? (0, 0, null) : TimeScans(() => engine.ScanStore(large.Root, recurse: true, ctx));
    // A first call is one sample per process, and a 2-core machine's noise is of its size: several fresh processes,
    // the two pwsh builds in turn, and the median of each figure.
    // The same pwsh compiled ReadyToRun, as Microsoft's packages ship it (the dotnet tool's assemblies are IL-only).
    var r2rPwsh = ReadyToRunPwsh(repo);
    var toolRuns = new List<(double First, double Later, double LargeFirst, double LargeLater, double FirstCpu, double Uncached)>();
    var r2rRuns = new List<(double First, double Later, double LargeFirst, double LargeLater, double FirstCpu, double Uncached)>();
    for (var i = 0; i < processes; i++)
    {
        if (PwshScans(repo, small.Root, large?.Root, ["pwsh"]) is { } t) toolRuns.Add(t);
        if (r2rPwsh is not null && PwshScans(repo, small.Root, large?.Root, [r2rPwsh]) is { } r) r2rRuns.Add(r);
    }
    var pwsh = MedianRow(toolRuns);
    var pwshR2r = MedianRow(r2rRuns);

    // The loop three times, the median (the first also warms the page cache for qemu-img's libraries).
    var loops = new List<double>();
    var viaQemuImg = new Dictionary<string, string[]>(StringComparer.Ordinal);
    for (var i = 0; i < 3; i++)
    {
        var qemuImg = Stopwatch.StartNew();
        foreach (var leaf in small.Leaves) viaQemuImg[leaf] = QemuImgChain(leaf);
        loops.Add(qemuImg.Elapsed.TotalMilliseconds);
    }

    // Both must describe the same forest, or the comparison means nothing.
    if (forest.Count != small.Leaves.Count) throw new InvalidOperationException($"ScanStore found {forest.Count} chains, expected {small.Leaves.Count}");
    foreach (var chain in forest)
    {
        var ours = chain.Layers.Select(l => l.Path).ToArray();
        if (!ours.SequenceEqual(viaQemuImg[chain.Path])) throw new InvalidOperationException($"chains differ for {chain.Path}");
    }
    if (largeForest is not null && (largeForest.Count != large!.Leaves.Count || largeForest.Any(c => c.Depth != depth)))
    {
        throw new InvalidOperationException($"the large store scanned as {largeForest.Count} chains, expected {large.Leaves.Count} of {depth}");
    }

    var loopMs = Median(loops);
    Console.WriteLine(F($"qemu-img info --backing-chain loop, {small.Images} images: {loopMs,9:F1} ms  ({small.Leaves.Count} calls; median of 3 loops: {string.Join(", ", loops.Select(l => l.ToString("F0", CultureInfo.InvariantCulture)))} ms)"));
    Console.WriteLine();
    Console.WriteLine(F($"| scan | images | first call (real pwsh: median of {processes} fresh processes) | later calls (median of 5{(processes > 1 ? ", then of the processes" : "")}) | ratio first / later against the qemu-img loop |"));
    Console.WriteLine("|---|---|---|---|---|");
    foreach (var (row, label) in new[] { (pwsh, "pwsh of the dotnet tool (IL-only)"), (pwshR2r, "the same pwsh, ReadyToRun as Microsoft ships it") })
    {
        if (row is not { } p) continue;
        Console.WriteLine(F($"| Get-KvmSnapshotChain -Directory, real pwsh: {label}, first call after Import-Module | {small.Images} | {p.First:F1} ms | {p.Later:F1} ms | {loopMs / p.First:F1}x / {loopMs / p.Later:F1}x (goal >= 50x / >= 80x) |"));
        if (p.LargeLater > 0) Console.WriteLine(F($"| same | {large!.Images} | {p.LargeFirst:F1} ms | {p.LargeLater:F1} ms | goal: <= 1000 ms later |"));
    }
    Console.WriteLine(F($"| OfflineEngine.ScanStore, this process | {small.Images} | {firstMs:F1} ms | {laterMs:F1} ms | {loopMs / firstMs:F1}x / {loopMs / laterMs:F1}x |"));
    if (large is not null) Console.WriteLine(F($"| same | {large.Images} | {largeFirst:F1} ms | {largeLater:F1} ms | growth x{largeLater / laterMs:F1} for x{(double)large.Images / small.Images:F0} images |"));
    if (pwsh is { } q)
    {
        var r2rCpu = pwshR2r is { } r ? F($", {r.FirstCpu:F1} ms on the ReadyToRun copy") : "";
        Console.WriteLine(F($"(the first real-pwsh call used {q.FirstCpu:F1} ms of the process's CPU time, all threads, on the dotnet tool's pwsh{r2rCpu}: less sensitive to other load than its wall time)"));
        // Later calls read unchanged headers from the session's cache; these read every header again, so they
        // show the scan itself, and they do not depend on the qemu-img loop's time.
        var r2rUncached = pwshR2r is { } u ? F($", {u.Uncached:F1} ms on the ReadyToRun copy") : "";
        Console.WriteLine(F($"(later calls with the session's header cache cleared before each, every header read again: {q.Uncached:F1} ms on the dotnet tool's pwsh{r2rUncached}; {loopMs / q.Uncached:F1}x the loop)"));
    }
    return 0;
}
finally
{
    Directory.Delete(small.Root, recursive: true);
    if (large is not null) Directory.Delete(large.Root, recursive: true);
}

static (double First, double Later, IReadOnlyList<KvmSnapshot.Model.SnapshotChain> Forest) TimeScans(Func<IReadOnlyList<KvmSnapshot.Model.SnapshotChain>> scan)
{
    var first = Stopwatch.StartNew();
    var forest = scan();
    first.Stop();
    var repeats = new List<double>();
    for (var i = 0; i < 5; i++)
    {
        var w = Stopwatch.StartNew();
        scan();
        repeats.Add(w.Elapsed.TotalMilliseconds);
    }
    return (first.Elapsed.TotalMilliseconds, Median(repeats), forest);
}

// A fresh real pwsh: Import-Module, then the first Get-KvmSnapshotChain -Directory and five later ones (and the same
// for the large store, whose first call is no longer the session's first). Null when the module is not built.
static (double First, double Later, double LargeFirst, double LargeLater, double FirstCpu, double Uncached)? PwshScans(string repo, string store, string? large, string[] pwsh)
{
    var manifest = Directory.Exists(Path.Combine(repo, "output/KvmSnapshot"))
        ? Directory.GetFiles(Path.Combine(repo, "output/KvmSnapshot"), "KvmSnapshot.psd1", SearchOption.AllDirectories).FirstOrDefault()
        : null;
    if (manifest is null)
    {
        Console.WriteLine("(output/KvmSnapshot is not built: run ./build.ps1 -Task Build for the real-pwsh row)");
        return null;
    }
    var script = $$"""
        $ErrorActionPreference = 'Stop'
        Import-Module '{{manifest}}'
        function T([string] $d) { $w = [Diagnostics.Stopwatch]::StartNew(); $null = Get-KvmSnapshotChain -Directory $d -Recurse; $w.Elapsed.TotalMilliseconds }
        function M([double[]] $v) { ($v | Sort-Object)[[int][math]::Floor($v.Count / 2)] }
        $proc = [Diagnostics.Process]::GetCurrentProcess(); $cpu0 = $proc.TotalProcessorTime.TotalMilliseconds
        $first = T '{{store}}'
        $proc.Refresh(); $firstCpu = $proc.TotalProcessorTime.TotalMilliseconds - $cpu0
        $later = M @(1..5 | ForEach-Object { T '{{store}}' })
        $cacheType = [KvmSnapshot.Model.SnapshotChain].Assembly.GetType('KvmSnapshot.Chains.HeaderCache')
        $session = $cacheType.GetProperty('Session').GetValue($null); $clear = $cacheType.GetMethod('Clear')
        $uncached = M @(1..5 | ForEach-Object { $null = $clear.Invoke($session, $null); T '{{store}}' })
        $lf = 0; $ll = 0
        if ('{{large}}') { $lf = T '{{large}}'; $ll = M @(1..5 | ForEach-Object { T '{{large}}' }) }
        '{0} {1} {2} {3} {4} {5}' -f $first, $later, $lf, $ll, $firstCpu, $uncached
        """;
    var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = repo };
    foreach (var a in pwsh.Concat(["-NoProfile", "-NonInteractive", "-Command", script])) psi.ArgumentList.Add(a);
    using var p = Process.Start(psi)!;
    var stderr = p.StandardError.ReadToEndAsync();
    var output = p.StandardOutput.ReadToEnd().Trim();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"pwsh failed: {stderr.Result}");
    var parts = output.Split(' ').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
    return (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]);
}

// The pwsh.dll of benchmarks/r2r-pwsh.sh's ReadyToRun copy of the tool's pwsh (made once, then reused), or null when
// crossgen2 cannot be restored.
static string? ReadyToRunPwsh(string repo)
{
    var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = repo };
    psi.ArgumentList.Add(Path.Combine(repo, "benchmarks/r2r-pwsh.sh"));
    using var p = Process.Start(psi)!;
    var path = p.StandardOutput.ReadToEnd().Trim();
    p.WaitForExit();
    if (p.ExitCode == 0 && File.Exists(path)) return path;
    Console.WriteLine("(no ReadyToRun copy of pwsh: benchmarks/r2r-pwsh.sh failed; only the dotnet tool's row)");
    return null;
}

// The median of each figure over the fresh processes (null when none ran).
static (double First, double Later, double LargeFirst, double LargeLater, double FirstCpu, double Uncached)? MedianRow(List<(double First, double Later, double LargeFirst, double LargeLater, double FirstCpu, double Uncached)> runs)
{
    if (runs.Count == 0) return null;
    return (Median(runs.Select(r => r.First).ToList()), Median(runs.Select(r => r.Later).ToList()), Median(runs.Select(r => r.LargeFirst).ToList()),
        Median(runs.Select(r => r.LargeLater).ToList()), Median(runs.Select(r => r.FirstCpu).ToList()), Median(runs.Select(r => r.Uncached).ToList()));
}

static string FindRepo()
{
    foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "build.ps1")) && Directory.Exists(Path.Combine(dir.FullName, "benchmarks"))) return dir.FullName;
        }
    }
    throw new InvalidOperationException("run from the repository (build.ps1 not found above the current directory)");
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

static string[] QemuImgChain(string leaf)
{
    var output = Program.QemuImg("info", "--backing-chain", "-U", "--output=json", leaf);
    using var doc = JsonDocument.Parse(output);
    return doc.RootElement.EnumerateArray().Select(e => Path.GetFullPath(e.GetProperty("filename").GetString()!)).ToArray();
}

sealed record Store(string Root, int Images, List<string> Leaves)
{
    // Templates (qemu-img), then per chain: layer 0 backs on its template ("../../templates/tNN.qcow2"), layer d on
    // layer d-1 ("cNNNN-DD.qcow2"); both name kinds have a fixed length, so a copy of a prototype overlay made by
    // qemu-img becomes any other overlay by rewriting the name bytes at the header's backing_file_offset.
    public static Store Build(int chains, int depth, int templates)
    {
        var root = Path.Combine(Path.GetTempPath(), $"kvmsnap-bench-{Guid.NewGuid():N}"[..32]);
        Directory.CreateDirectory(Path.Combine(root, "templates"));
        Directory.CreateDirectory(Path.Combine(root, "guests"));
        for (var t = 0; t < templates; t++) Run("create", "-q", "-f", "qcow2", Path.Combine(root, "templates", $"t{t:D2}.qcow2"), "64M");
        var protoDir = Path.Combine(root, "guests", "proto");
        Directory.CreateDirectory(protoDir);
        var onTemplate = Path.Combine(protoDir, "c0000-00.qcow2");
        Run("create", "-q", "-f", "qcow2", "-b", "../../templates/t00.qcow2", "-F", "qcow2", onTemplate);
        var onSibling = Path.Combine(protoDir, "c0000-01.qcow2");
        Run("create", "-q", "-f", "qcow2", "-b", "c0000-00.qcow2", "-F", "qcow2", onSibling);
        Run("check", "-q", onSibling);
        var protoTemplate = File.ReadAllBytes(onTemplate);
        var protoSibling = File.ReadAllBytes(onSibling);
        Directory.Delete(protoDir, recursive: true);

        var leaves = new List<string>();
        for (var c = 0; c < chains; c++)
        {
            var dir = Path.Combine(root, "guests", $"vm{c:D4}");
            Directory.CreateDirectory(dir);
            for (var d = 0; d < depth - 1; d++)
            {
                var path = Path.Combine(dir, $"c{c:D4}-{d:D2}.qcow2");
                var backing = d == 0 ? $"../../templates/t{c % templates:D2}.qcow2" : $"c{c:D4}-{d - 1:D2}.qcow2";
                File.WriteAllBytes(path, WithBacking(d == 0 ? protoTemplate : protoSibling, backing));
                if (d == depth - 2) leaves.Add(path);
            }
        }
        // One overlay of the generated store checked by qemu-img as well, chain included.
        Run("check", "-q", leaves[0]);
        return new Store(root, templates + chains * (depth - 1), leaves);
    }

    private static byte[] WithBacking(byte[] prototype, string name)
    {
        var bytes = (byte[])prototype.Clone();
        var offset = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(8));
        var size = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(16));
        var encoded = System.Text.Encoding.UTF8.GetBytes(name);
        if (encoded.Length != size) throw new InvalidOperationException($"backing name '{name}' is not {size} bytes long");
        encoded.CopyTo(bytes, offset);
        return bytes;
    }

    private static void Run(params string[] args) => Program.QemuImg(args);
}

partial class Program
{
    internal static string QemuImg(params string[] args)
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
}
