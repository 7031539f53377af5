using System.Management.Automation;
using KvmSnapshot.Rendering;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Format-KvmChainTree: the images of chains as a console tree (bases at the top, overlays under their backing file,
/// shared bases as branch points), one string per line. Strings rather than format objects, so the tree composes
/// with Out-File, Set-Content, Select-String and -join like any text; see the help page.
/// </summary>
[Cmdlet(VerbsCommon.Format, "KvmChainTree")]
[OutputType(typeof(string))]
public sealed class FormatKvmChainTreeCommand : KvmCmdlet
{
    private const string Expected = "SnapshotChain or ChainLayer objects (Get-KvmSnapshotChain) or Test-KvmSnapshotChain results";
    private readonly TreeInput _input = new();

    /// <summary>Chains from Get-KvmSnapshotChain (-Path, -Directory, -Domain), their layers, or Test-KvmSnapshotChain results.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [AllowNull]
    public object?[] InputObject { get; set; } = null!;

    /// <summary>Auto (default), Ascii or Rich.</summary>
    [Parameter]
    [ValidateSet("Auto", "Ascii", "Rich")]
    public string Style { get; set; } = "Auto";

    protected override void ProcessRecord()
    {
        foreach (var error in _input.Add(InputObject, chains: true, snapshots: false, Expected)) WriteError(error);
    }

    protected override void EndProcessing()
    {
        if (_input.Count == 0) return;
        var style = TreeInput.ChooseStyle(this, Style);
        foreach (var line in TreeText.Render(TreeText.ChainTree(_input.Forest()), style)) WriteObject(line);
    }
}
