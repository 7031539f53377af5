using System.Management.Automation;
using KvmSnapshot.Rendering;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// Format-KvmSnapshotTree: domain snapshots as a console tree per domain, like <c>virsh snapshot-list --tree</c> with
/// the current snapshot marked, creation time, location and each external snapshot's overlay; one string per line.
/// </summary>
[Cmdlet(VerbsCommon.Format, "KvmSnapshotTree")]
[OutputType(typeof(string))]
public sealed class FormatKvmSnapshotTreeCommand : KvmCmdlet
{
    private const string Expected = "DomainSnapshot objects (Get-KvmSnapshot -Domain)";
    private readonly TreeInput _input = new();

    /// <summary>Snapshots from Get-KvmSnapshot -Domain.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [AllowNull]
    public object?[] InputObject { get; set; } = null!;

    /// <summary>Auto (default), Ascii or Rich.</summary>
    [Parameter]
    [ValidateSet("Auto", "Ascii", "Rich")]
    public string Style { get; set; } = "Auto";

    protected override void ProcessRecord()
    {
        foreach (var error in _input.Add(InputObject, chains: false, snapshots: true, Expected)) WriteError(error);
    }

    protected override void EndProcessing()
    {
        if (_input.Count == 0) return;
        var style = TreeInput.ChooseStyle(this, Style);
        foreach (var line in TreeText.Render(TreeText.SnapshotTrees(_input.SnapshotTrees()), style)) WriteObject(line);
    }
}
