using System.Collections.Generic;
using KvmSnapshot.Errors;
using KvmSnapshot.QemuImg;
using Xunit;

namespace KvmSnapshot.Tests.QemuImg;

public sealed class QemuImgParsingTests
{
    [Fact]
    public void Progress_lines_split_across_chunks_report_each_whole_percent_once()
    {
        var seen = new List<int>();
        var parser = new QemuImgProgressParser(seen.Add);
        parser.Feed("    (0.00/100%)\r    (12.");
        parser.Feed("34/100%)\r    (12.99/100%)\r");
        parser.Feed("noise line\n    (100.00/100%)");
        parser.Complete();
        Assert.Equal(new[] { 0, 12, 100 }, seen);
    }

    [Theory]
    [InlineData("    (45.50/100%)", true, 45.5)]
    [InlineData("(100.00/100%)", true, 100)]
    [InlineData("Images are identical.", false, 0)]
    [InlineData("    (45.50/200%)", false, 0)]
    public void Progress_line_parsing(string line, bool ok, double percent)
    {
        Assert.Equal(ok, QemuImgProgressParser.TryParse(line, out var p));
        Assert.Equal(percent, p);
    }

    [Theory]
    [InlineData("plain/path.qcow2", "plain/path.qcow2")]
    [InlineData("a b", "'a b'")]
    [InlineData("it's", "'it'\\''s'")]
    [InlineData("", "''")]
    [InlineData("$(rm -rf /)", "'$(rm -rf /)'")]
    public void Command_line_display_quotes_like_a_shell(string argument, string shown)
        => Assert.Equal(shown, QemuImgCommandLine.Quote(argument));

    [Theory]
    [InlineData("qemu-img: Could not open 'x': Could not open 'x': No such file or directory", ErrorIds.DiskImageNotFound)]
    [InlineData("qemu-img: Could not open 'o': Could not open backing file: Could not open 'b': No such file or directory", ErrorIds.BackingFileMissing)]
    [InlineData("qemu-img: Could not open 'd': 'file' driver requires 'd' to be a regular file", ErrorIds.DiskImageIsDirectory)]
    [InlineData("qemu-img: Could not open 'r.img': Image is not in qcow2 format", ErrorIds.DiskImageNotQcow2)]
    [InlineData("qemu-img: Could not open 't': qcow2 header too short", ErrorIds.DiskImageMalformed)]
    [InlineData("qemu-img: Could not open 'a': Failed to get \"write\" lock\nIs another process using the image [a]?", ErrorIds.DiskImageInUse)]
    // Found by the two-session race (KvmSnapshot.Concurrency.Tests.ps1): the lock met on the backing file was QemuImgFailed.
    [InlineData("qemu-img: Could not open 'top': Could not open backing file: Failed to get shared \"write\" lock\nIs another process using the image [mid]?", ErrorIds.DiskImageInUse)]
    [InlineData("qemu-img: Could not delete snapshot 'n': snapshot not found", ErrorIds.SnapshotNotFound)]
    [InlineData("qemu-img: something new went wrong", ErrorIds.QemuImgFailed)]
    public void Stderr_maps_to_error_ids(string stderr, string errorId)
        => Assert.Equal(errorId, QemuImgErrors.Classify(stderr).ErrorId);
}
