using System.Collections.Generic;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace KvmSnapshot.QemuImg;

/// <summary>
/// Builds qemu's <c>json:{…}</c> pseudo-filenames, for opening an image in a way its own header does not say: with
/// no backing file (so a check never reaches beyond the image), or through another backing file (to compare with a
/// chain's old view). Paths go through a JSON serializer, never string concatenation, so any file name is safe.
/// </summary>
internal static class QemuImgJsonFilename
{
    private static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The image alone: <c>"backing": null</c> for formats that can have a backing file.</summary>
    public static string WithoutBacking(string path, string format)
    {
        var description = File(path, format);
        if (format is "qcow2" or "qed" or "vmdk") description["backing"] = null;
        return Serialize(description);
    }

    /// <summary>The image read through <paramref name="backingPath"/> (whose own backing chain is followed as recorded).</summary>
    public static string WithBacking(string path, string format, string backingPath, string backingFormat)
    {
        var description = File(path, format);
        description["backing"] = File(backingPath, backingFormat);
        return Serialize(description);
    }

    private static Dictionary<string, object?> File(string path, string format) => new()
    {
        ["driver"] = format,
        ["file"] = new Dictionary<string, object?> { ["driver"] = "file", ["filename"] = path },
    };

    private static string Serialize(Dictionary<string, object?> description) => "json:" + JsonSerializer.Serialize(description, Options);
}
