using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;

namespace KvmSnapshot.QemuImg;

/// <summary>One qemu-img call: its arguments and how to report it.</summary>
internal sealed record QemuImgInvocation(IReadOnlyList<string> Arguments)
{
    /// <summary>When set, stdout is parsed as <c>-p</c> progress and reported under this activity.</summary>
    public string? ProgressActivity { get; init; }
    public string? ProgressStatus { get; init; }
    /// <summary>The path the call is about; the target of any error.</summary>
    public object? Target { get; init; }
    /// <summary>Exit codes that are answers rather than failures (compare: 1 = different; check: 2, 3).</summary>
    public IReadOnlyCollection<int> SuccessExitCodes { get; init; } = new[] { 0 };
}

internal sealed record QemuImgResult(int ExitCode, string StdOut, string StdErr, string CommandLine);

/// <summary>
/// Runs qemu-img as a child process: argument list only (never a shell), stderr kept for errors,
/// <c>-p</c> progress forwarded, and cancellation that kills the child and waits for it before returning.
/// </summary>
internal sealed class QemuImgRunner
{
    /// <summary>Environment variable naming the qemu-img executable; otherwise qemu-img is looked up on PATH.</summary>
    public const string ExecutableVariable = "KVMSNAPSHOT_QEMU_IMG";

    private readonly string? _executable;

    /// <param name="executable">A fixed qemu-img to run; null = <see cref="ExecutableVariable"/>, then PATH, on every call.</param>
    public QemuImgRunner(string? executable = null) => _executable = executable;

    public static QemuImgRunner Default { get; } = new();

    /// <summary>The full path of the qemu-img this runner starts.</summary>
    public string ResolveExecutable()
        => _executable is not null
            ? ResolveExecutable(_executable, null)
            : ResolveExecutable(Environment.GetEnvironmentVariable(ExecutableVariable), Environment.GetEnvironmentVariable("PATH"));

    /// <summary>
    /// <paramref name="configured"/> (the variable's value) when set, else the first qemu-img on <paramref name="searchPath"/>.
    /// Resolved on every call: users may change the variable between commands.
    /// </summary>
    public static string ResolveExecutable(string? configured, string? searchPath)
    {
        if (!string.IsNullOrEmpty(configured))
        {
            if (File.Exists(configured)) return Path.GetFullPath(configured);
            throw NotFound($"{ExecutableVariable} names '{configured}', which does not exist.");
        }
        foreach (var dir in (searchPath ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "qemu-img");
            if (File.Exists(candidate)) return candidate;
        }
        throw NotFound("qemu-img was not found on PATH.");
    }

    public QemuImgResult Run(QemuImgInvocation invocation, IOperationContext ctx)
    {
        var executable = ResolveExecutable();
        var commandLine = QemuImgCommandLine.Format(executable, invocation.Arguments);
        if (ctx.Cancellation.IsCancellationRequested)
        {
            throw Cancelled($"Cancelled before running: {commandLine}", invocation.Target);
        }
        ctx.Verbose(commandLine);

        var psi = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in invocation.Arguments) psi.ArgumentList.Add(argument);
        // Error mapping reads qemu-img's English messages.
        psi.Environment["LC_ALL"] = "C";

        var activity = invocation.ProgressActivity;
        try
        {
            using var process = new Process { StartInfo = psi };
            try
            {
                process.Start();
            }
            catch (Win32Exception e)
            {
                throw NotFound($"qemu-img could not be started from '{executable}': {e.Message}", e);
            }
            // qemu-img never reads stdin; closing it keeps a stray prompt from blocking forever.
            process.StandardInput.Close();

            var stdout = new StringBuilder();
            var parser = activity is null
                ? null
                : new QemuImgProgressParser(p => ctx.Progress(activity, invocation.ProgressStatus ?? activity, p));
            if (activity is not null) ctx.Progress(activity, invocation.ProgressStatus ?? activity, 0);

            var stderrTask = process.StandardError.ReadToEndAsync();
            var stdoutTask = Task.Run(() =>
            {
                var buffer = new char[4096];
                int n;
                while ((n = process.StandardOutput.Read(buffer, 0, buffer.Length)) > 0)
                {
                    stdout.Append(buffer, 0, n);
                    parser?.Feed(buffer.AsSpan(0, n));
                }
                parser?.Complete();
            });

            var killed = 0;
            using (ctx.Cancellation.Register(() =>
            {
                Interlocked.Exchange(ref killed, 1);
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { /* already exited */ }
                catch (Win32Exception) { /* exiting as we kill it */ }
            }))
            {
                process.WaitForExit();
                Task.WaitAll(stdoutTask, stderrTask);
            }

            var stderr = stderrTask.Result;
            if (Volatile.Read(ref killed) == 1 || ctx.Cancellation.IsCancellationRequested)
            {
                throw Cancelled($"Cancelled; qemu-img was stopped and has exited: {commandLine}", invocation.Target);
            }

            var result = new QemuImgResult(process.ExitCode, stdout.ToString(), stderr, commandLine);
            if (!invocation.SuccessExitCodes.Contains(result.ExitCode))
            {
                throw QemuImgErrors.FromFailure(result, invocation.Target);
            }
            return result;
        }
        finally
        {
            if (activity is not null) ctx.ProgressCompleted(activity);
        }
    }

    internal static KvmSnapshotException Cancelled(string message, object? target)
        => new(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, target, message);

    private static KvmSnapshotException NotFound(string message, Exception? inner = null)
        => new(ErrorIds.QemuImgNotFound, KvmErrorKind.ObjectNotFound, "qemu-img", message, inner)
        {
            RecommendedAction = $"Install qemu-utils, or set {ExecutableVariable} to the qemu-img executable.",
        };
}
