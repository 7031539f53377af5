using System;
using System.ComponentModel;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Rendering;

/// <summary>
/// Graphviz's <c>dot</c> as a subprocess: DOT text on stdin, the picture (SVG or PNG) on stdout, an argument list and
/// never a shell string.
/// </summary>
internal sealed class Graphviz
{
    public const string Package = "graphviz";

    private readonly string _program;

    /// <param name="program">The program to run: a name looked up on PATH (default <c>dot</c>) or a full path.</param>
    public Graphviz(string program = "dot") => _program = program;

    public static Graphviz Default { get; } = new();

    /// <summary>The full path of dot, or GraphvizNotFound naming the Debian package.</summary>
    public string ResolveExecutable(string? searchPath = null)
    {
        if (_program.Contains('/', StringComparison.Ordinal))
        {
            if (File.Exists(_program)) return _program;
        }
        else
        {
            foreach (var dir in (searchPath ?? Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = Path.Combine(dir, _program);
                if (File.Exists(candidate)) return candidate;
            }
        }
        throw NotFound($"Graphviz's '{_program}' program was not found on PATH; SVG and PNG output need it. Install the Debian package '{Package}' (apt-get install {Package}), or use -Format Dot or Mermaid.");
    }

    /// <summary>Renders <paramref name="dotText"/> as <paramref name="format"/> ("svg" or "png").</summary>
    public byte[] Render(string dotText, string format, IOperationContext ctx)
    {
        var executable = ResolveExecutable();
        var psi = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add("-T" + format);
        psi.Environment["LC_ALL"] = "C";
        ctx.Verbose($"{executable} -T{format} (DOT on stdin, {dotText.Length} characters)");
        const string activity = "Rendering the graph with Graphviz dot";
        ctx.Progress(activity, $"dot -T{format}", -1);
        try
        {
            using var process = new Process { StartInfo = psi };
            try
            {
                process.Start();
            }
            catch (Win32Exception e)
            {
                throw NotFound($"Graphviz's dot could not be started from '{executable}': {e.Message}", e);
            }
            var stdout = new MemoryStream();
            var stdoutTask = process.StandardOutput.BaseStream.CopyToAsync(stdout);
            var stderrTask = process.StandardError.ReadToEndAsync();
            var stdinTask = Task.Run(() =>
            {
                try
                {
                    process.StandardInput.Write(dotText);
                    process.StandardInput.Close();
                }
                catch (IOException) { /* dot exited early: its stderr says why */ }
            });
            var killed = 0;
            using (ctx.Cancellation.Register(() =>
            {
                Interlocked.Exchange(ref killed, 1);
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { /* already exited */ }
            }))
            {
                process.WaitForExit();
                Task.WaitAll(stdinTask, stdoutTask, stderrTask);
            }
            if (Volatile.Read(ref killed) == 1 || ctx.Cancellation.IsCancellationRequested)
            {
                throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, executable, "Cancelled; dot was stopped and has exited.");
            }
            if (process.ExitCode != 0 || stdout.Length == 0)
            {
                throw new KvmSnapshotException(ErrorIds.GraphvizFailed, KvmErrorKind.InvalidResult, executable,
                    $"dot -T{format} failed with exit code {process.ExitCode}: {stderrTask.Result.Trim()}");
            }
            return stdout.ToArray();
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }

    private static KvmSnapshotException NotFound(string message, Exception? inner = null)
        => new(ErrorIds.GraphvizNotFound, KvmErrorKind.NotInstalled, "dot", message, inner)
        {
            RecommendedAction = $"apt-get install {Package}",
        };
}
