using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Security.Cryptography;

namespace KvmSnapshot.Tests.Infrastructure;

public sealed record ToolResult(int ExitCode, string StdOut, string StdErr)
{
    public ToolResult EnsureSuccess()
    {
        if (ExitCode != 0) throw new InvalidOperationException($"exit {ExitCode}: {StdErr}{StdOut}");
        return this;
    }
}

/// <summary>Runs the real tools (qemu-img, qemu-io, virsh) the tests use to set up and check state.</summary>
public static class Tool
{
    public static ToolResult Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return new ToolResult(p.ExitCode, stdout, stderr.Result);
    }

    /// <summary>qemu-img create -f qcow2 [-b backing -F fmt] path [size].</summary>
    public static void CreateQcow2(string path, string? size = "64M", string? backing = null, string backingFormat = "qcow2")
    {
        var args = new List<string> { "create", "-q", "-f", "qcow2" };
        if (backing is not null) { args.AddRange(new[] { "-b", backing, "-F", backingFormat }); }
        args.Add(path);
        if (size is not null) args.Add(size);
        Run("qemu-img", args.ToArray()).EnsureSuccess();
    }

    public static void CreateRaw(string path, string size = "16M") => Run("qemu-img", "create", "-q", "-f", "raw", path, size).EnsureSuccess();

    /// <summary>Writes <paramref name="length"/> bytes of <paramref name="pattern"/> at <paramref name="offset"/> through the whole chain (qemu-io -c 'write -P').</summary>
    public static void WritePattern(string image, byte pattern, string offset, string length, string format = "qcow2")
        => Run("qemu-io", "-f", format, "-c", $"write -P 0x{pattern:x2} {offset} {length}", image).EnsureSuccess();

    /// <summary>True when the guest-visible content of both images is byte-identical (qemu-img compare exit 0).</summary>
    public static bool SameContent(string a, string b)
    {
        var r = Run("qemu-img", "compare", "-U", a, b);
        if (r.ExitCode > 1) throw new InvalidOperationException($"qemu-img compare failed: {r.StdErr}");
        return r.ExitCode == 0;
    }

    /// <summary>True when the range reads back as <paramref name="pattern"/> (qemu-io -c 'read -P').</summary>
    public static bool ReadsPattern(string image, byte pattern, string offset, string length, string format = "qcow2")
    {
        var r = Run("qemu-io", "-r", "-U", "-f", format, "-c", $"read -P 0x{pattern:x2} {offset} {length}", image);
        return r.ExitCode == 0 && !r.StdOut.Contains("Pattern verification failed", StringComparison.Ordinal);
    }

    public static string Sha256(string file)
    {
        using var s = File.OpenRead(file);
        return Convert.ToHexString(SHA256.HashData(s));
    }

    /// <summary>Hash of every file in a directory, to prove a failed call changed nothing.</summary>
    public static IReadOnlyDictionary<string, string> HashTree(string directory)
    {
        var d = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)) d[f] = Sha256(f);
        return d;
    }

    /// <summary>True when a process named <paramref name="name"/> runs with <paramref name="argument"/> on its command line (/proc).</summary>
    public static bool ProcessRunningWith(string name, string argument)
    {
        foreach (var p in Process.GetProcessesByName(name))
        {
            try
            {
                var cmdline = File.ReadAllText($"/proc/{p.Id}/cmdline").Split('\0');
                if (Array.IndexOf(cmdline, argument) >= 0) return true;
            }
            catch (IOException) { }
        }
        return false;
    }
}
