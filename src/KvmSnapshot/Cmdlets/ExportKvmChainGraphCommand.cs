using System;
using System.IO;
using System.Management.Automation;
using System.Text;
using KvmSnapshot.Errors;
using KvmSnapshot.Rendering;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Export-KvmChainGraph: chains and domain snapshots as a graph (Graphviz DOT, Mermaid, or SVG/PNG drawn by dot),
/// as text to the pipeline or to a file with -Path.
/// </summary>
[Cmdlet(VerbsData.Export, "KvmChainGraph", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(string), typeof(FileInfo))]
public sealed class ExportKvmChainGraphCommand : KvmCmdlet
{
    private const string Expected = "SnapshotChain or ChainLayer objects (Get-KvmSnapshotChain), Test-KvmSnapshotChain results or DomainSnapshot objects (Get-KvmSnapshot)";
    private readonly TreeInput _input = new();

    /// <summary>Chains, chain layers, Test-KvmSnapshotChain results and domain snapshots, in any mix.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [AllowNull]
    public object?[] InputObject { get; set; } = null!;

    [Parameter(Position = 0)]
    [ValidateSet("Dot", "Mermaid", "Svg", "Png")]
    public string Format { get; set; } = "Dot";

    /// <summary>The file to write; without it the text goes to the pipeline.</summary>
    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    /// <summary>Overwrite an existing file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var error in _input.Add(InputObject, chains: true, snapshots: true, Expected)) WriteError(error);
    }

    protected override void EndProcessing()
    {
        if (_input.Count == 0) return;
        var format = Format.ToLowerInvariant();
        var path = ResolveNewPathOrNull(Path);
        // Bad input is an error for the one graph this call writes, and nothing is drawn or written.
        if (!TryRun(() => CheckTarget(format, path))) return;

        var forest = _input.Forest();
        var trees = _input.SnapshotTrees();
        var graph = ChainGraph.From(forest, trees);
        TryRun(() =>
        {
            byte[]? picture = null;
            string? text = format switch
            {
                "dot" => graph.ToDot(),
                "mermaid" => graph.ToMermaid(),
                _ => null,
            };
            if (path is not null && !ShouldProcess(path, $"Write a {Format} graph of {forest.Nodes.Count} images and {_input.Snapshots.Count} snapshots")) return;
            if (text is null)
            {
                var dot = graph.ToDot();
                picture = RunEngine(ctx => Graphviz.Default.Render(dot, format, ctx));
                if (format == "svg") text = Encoding.UTF8.GetString(picture);
            }
            if (path is null)
            {
                WriteObject(text);
                return;
            }
            var bytes = picture ?? new UTF8Encoding(false).GetBytes(text!);
            // Written beside the target and moved over it, so a failed write never leaves half a file under the name.
            var temp = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path) ?? ".", $".{System.IO.Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
            try
            {
                File.WriteAllBytes(temp, bytes);
                File.Move(temp, path, overwrite: Force);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            WriteObject(new FileInfo(path));
        });
    }

    private void CheckTarget(string format, string? path)
    {
        if (path is null && format == "png")
        {
            throw new KvmSnapshotException(ErrorIds.GraphNeedsPath, KvmErrorKind.InvalidArgument, Format,
                "-Format Png writes binary data: name the file with -Path (or use -Format Svg, Dot or Mermaid for text).");
        }
        if (path is not null && Directory.Exists(path))
        {
            throw new KvmSnapshotException(ErrorIds.GraphFileExists, KvmErrorKind.InvalidArgument, path, $"'{path}' is a directory; name a file to write.");
        }
        if (path is not null && File.Exists(path) && !Force)
        {
            throw new KvmSnapshotException(ErrorIds.GraphFileExists, KvmErrorKind.ResourceExists, path, $"'{path}' exists; it was left as it is.")
            {
                RecommendedAction = "Add -Force to overwrite it, or name another file.",
            };
        }
    }
}
