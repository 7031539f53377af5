using System;
using System.IO;
using System.Management.Automation;
using KvmSnapshot.Model;

namespace KvmSnapshot.Completion;

/// <summary>
/// Lets -Top/-Base/-BackingFile take a chain layer, an image object or a FileInfo from the pipeline or a
/// variable as well as a path string: each becomes its path.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property)]
internal sealed class LayerPathTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        return value switch
        {
            ChainLayer layer => layer.Path,
            DiskImage image => image.Path,
            SnapshotChain chain => chain.Path,
            FileSystemInfo file => file.FullName,
            _ => inputData,
        };
    }
}
