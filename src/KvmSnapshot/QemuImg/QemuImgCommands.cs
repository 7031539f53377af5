using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;

namespace KvmSnapshot.QemuImg;

/// <summary>
/// The qemu-img subcommands the module uses, as typed calls. Every read passes <c>-U</c> (force-share) so it works
/// on images a running VM holds; every path is passed as its own argument (callers pass full paths, so a name
/// starting with '-' or containing ':' is never taken for an option or a protocol).
/// </summary>
internal sealed class QemuImgCommands
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = false };

    private readonly QemuImgRunner _runner;

    public QemuImgCommands(QemuImgRunner runner) => _runner = runner;

    public static QemuImgCommands Default { get; } = new(QemuImgRunner.Default);

    /// <summary><c>qemu-img info -U --output=json [-f fmt] path</c>. qemu-img does not open the backing file for this.</summary>
    public QemuImgInfo Info(string path, string? format, IOperationContext ctx)
    {
        var args = new List<string> { "info", "-U", "--output=json" };
        AddFormat(args, "-f", format);
        args.Add(path);
        var result = _runner.Run(new QemuImgInvocation(args) { Target = path }, ctx);
        return Parse<QemuImgInfo>(result, path);
    }

    /// <summary>
    /// <c>qemu-img check -U --output=json</c> of one image on its own: the image is opened through a json: description
    /// with <c>"backing": null</c>, so a missing or unfollowable backing file never makes the check fail or reach out.
    /// </summary>
    public QemuImgCheck Check(string path, string format, IOperationContext ctx)
    {
        var args = new List<string> { "check", "-U", "--output=json", QemuImgJsonFilename.WithoutBacking(path, format) };
        var result = _runner.Run(new QemuImgInvocation(args) { Target = path, SuccessExitCodes = new[] { 0, 2, 3 } }, ctx);
        var check = Parse<QemuImgCheck>(result, path);
        return new QemuImgCheck
        {
            Filename = path,
            Format = check.Format,
            CheckErrors = check.CheckErrors,
            Corruptions = check.Corruptions,
            Leaks = check.Leaks,
            CorruptionsFixed = check.CorruptionsFixed,
            LeaksFixed = check.LeaksFixed,
            ImageEndOffset = check.ImageEndOffset,
            TotalClusters = check.TotalClusters,
            AllocatedClusters = check.AllocatedClusters,
            FragmentedClusters = check.FragmentedClusters,
            CompressedClusters = check.CompressedClusters,
            ExitCode = result.ExitCode,
        };
    }

    /// <summary>
    /// <c>qemu-img map -U --output=json -f fmt path</c>: every guest range of the image's view (through its backing
    /// chain), with the depth of the layer that holds it and the data's offset in that layer's file. Metadata only.
    /// </summary>
    internal IReadOnlyList<QemuImgMapExtent> Map(string path, string format, IOperationContext ctx)
    {
        var args = new List<string> { "map", "-U", "--output=json", "-f", format, path };
        var result = _runner.Run(new QemuImgInvocation(args) { Target = path }, ctx);
        return Parse<List<QemuImgMapExtent>>(result, path);
    }

    /// <summary><c>qemu-img compare -U -p</c>: true when the guest-visible content of both images is identical.</summary>
    public bool Compare(string first, string? firstFormat, string second, string? secondFormat, IOperationContext ctx)
    {
        var args = new List<string> { "compare", "-U", "-p" };
        AddFormat(args, "-f", firstFormat);
        AddFormat(args, "-F", secondFormat);
        args.Add(first);
        args.Add(second);
        var result = _runner.Run(new QemuImgInvocation(args)
        {
            Target = first,
            SuccessExitCodes = new[] { 0, 1 },
            ProgressActivity = "qemu-img compare",
            ProgressStatus = $"Comparing {Path.GetFileName(first)} with {Path.GetFileName(second)}",
        }, ctx);
        return result.ExitCode == 0;
    }

    /// <summary><c>qemu-img create -q -f fmt [-b backing -F backingFmt] [-o …] path [size]</c>.</summary>
    public void Create(string path, string format, long? size, string? backingFile, string? backingFormat,
        int? clusterSize, string? preallocation, IOperationContext ctx)
    {
        var args = new List<string> { "create", "-q", "-f", format };
        if (backingFile is not null)
        {
            args.Add("-b");
            args.Add(backingFile);
            AddFormat(args, "-F", backingFormat);
        }
        var options = new List<string>();
        if (clusterSize is not null) options.Add($"cluster_size={clusterSize}");
        if (preallocation is not null) options.Add($"preallocation={preallocation}");
        if (options.Count > 0)
        {
            args.Add("-o");
            args.Add(string.Join(",", options));
        }
        args.Add(path);
        if (size is not null) args.Add(size.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _runner.Run(new QemuImgInvocation(args) { Target = path }, ctx);
    }

    /// <summary><c>qemu-img commit -p -d -f fmt -b base top</c>: -d keeps top's data, so the chain above stays valid.</summary>
    public void Commit(string top, string topFormat, string baseImage, IOperationContext ctx)
    {
        var args = new List<string> { "commit", "-p", "-d", "-f", topFormat, "-b", baseImage, top };
        _runner.Run(new QemuImgInvocation(args)
        {
            Target = top,
            ProgressActivity = "qemu-img commit",
            ProgressStatus = $"Committing {Path.GetFileName(top)} into {Path.GetFileName(baseImage)}",
        }, ctx);
    }

    /// <summary>
    /// <c>qemu-img rebase [-p | -u] -f fmt -b backing [-F backingFmt] image</c>. Safe mode (unsafe false) copies into
    /// the image every cluster that differs between the old and the new backing; <paramref name="backingFile"/> ""
    /// flattens.
    /// </summary>
    public void Rebase(string image, string imageFormat, string backingFile, string? backingFormat, bool unsafeRebase, IOperationContext ctx)
    {
        var args = new List<string> { "rebase", unsafeRebase ? "-u" : "-p", "-f", imageFormat, "-b", backingFile };
        if (backingFile.Length > 0) AddFormat(args, "-F", backingFormat);
        args.Add(image);
        _runner.Run(new QemuImgInvocation(args)
        {
            Target = image,
            ProgressActivity = unsafeRebase ? null : "qemu-img rebase",
            ProgressStatus = backingFile.Length == 0
                ? $"Flattening {Path.GetFileName(image)}"
                : $"Rebasing {Path.GetFileName(image)} onto {Path.GetFileName(backingFile)}",
        }, ctx);
    }

    /// <summary>
    /// <c>qemu-img convert -p -f srcFmt -O fmt [-c] [-r bytesPerSecond] [-B backing -F backingFmt] source destination</c>;
    /// <paramref name="rateLimit"/> (bytes per second, 0: none) caps the data copied per second (-r).
    /// </summary>
    public void Convert(string source, string sourceFormat, string destination, string format, bool compress,
        string? backingFile, string? backingFormat, IOperationContext ctx, ulong rateLimit = 0)
    {
        var args = new List<string> { "convert", "-p", "-f", sourceFormat, "-O", format };
        if (compress) args.Add("-c");
        if (rateLimit > 0)
        {
            args.Add("-r");
            args.Add(rateLimit.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        if (backingFile is not null)
        {
            args.Add("-B");
            args.Add(backingFile);
            AddFormat(args, "-F", backingFormat);
        }
        args.Add(source);
        args.Add(destination);
        _runner.Run(new QemuImgInvocation(args)
        {
            Target = source,
            ProgressActivity = "qemu-img convert",
            ProgressStatus = $"Converting {Path.GetFileName(source)} to {format} {Path.GetFileName(destination)}",
        }, ctx);
    }

    /// <summary>
    /// <c>qemu-img measure -U --output=json -O fmt [-o opts] (-f srcFmt source | --size N)</c>: the bytes a new image
    /// needs ("required": as written sparse; "fully-allocated": preallocated).
    /// </summary>
    public QemuImgMeasure Measure(string? source, string? sourceFormat, long? size, string format, string? options, IOperationContext ctx)
    {
        var args = new List<string> { "measure", "--output=json", "-O", format };
        if (options is not null)
        {
            args.Add("-o");
            args.Add(options);
        }
        if (source is not null)
        {
            args.Add("-U");
            AddFormat(args, "-f", sourceFormat);
            args.Add(source);
        }
        else
        {
            args.Add("--size");
            args.Add((size ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var result = _runner.Run(new QemuImgInvocation(args) { Target = source }, ctx);
        return Parse<QemuImgMeasure>(result, source ?? format);
    }

    /// <summary><c>qemu-img snapshot -c|-a|-d name path</c> (qemu-img snapshot has no -f; callers check the format first).</summary>
    public void Snapshot(InternalSnapshotAction action, string path, string name, IOperationContext ctx)
    {
        var flag = action switch
        {
            InternalSnapshotAction.Create => "-c",
            InternalSnapshotAction.Apply => "-a",
            _ => "-d",
        };
        _runner.Run(new QemuImgInvocation(new List<string> { "snapshot", flag, name, path }) { Target = path }, ctx);
    }

    private static void AddFormat(List<string> args, string flag, string? format)
    {
        if (format is null) return;
        args.Add(flag);
        args.Add(format);
    }

    private static T Parse<T>(QemuImgResult result, string path) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(result.StdOut, Json)
                ?? throw new JsonException("empty document");
        }
        catch (JsonException e)
        {
            throw new KvmSnapshotException(ErrorIds.QemuImgOutputInvalid, KvmErrorKind.InvalidResult, path,
                $"qemu-img printed output that is not the expected JSON ({e.Message}). Command: {result.CommandLine}", e);
        }
    }
}

internal enum InternalSnapshotAction
{
    /// <summary>qemu-img snapshot -c</summary>
    Create,
    /// <summary>qemu-img snapshot -a</summary>
    Apply,
    /// <summary>qemu-img snapshot -d</summary>
    Delete,
}
