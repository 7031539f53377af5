using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading.Tasks;

namespace KvmSnapshot.Tests.Hosting;

/// <summary>What one script run produced on every stream.</summary>
public sealed class PsResult
{
    public required IReadOnlyList<PSObject> Output { get; init; }
    public required IReadOnlyList<ErrorRecord> Errors { get; init; }
    public required IReadOnlyList<string> Verbose { get; init; }
    public required IReadOnlyList<string> Warnings { get; init; }
    public required IReadOnlyList<ProgressRecord> Progress { get; init; }
    public required string HostText { get; init; }
    public Exception? Terminating { get; init; }

    public T Single<T>() => (T)Output.Single().BaseObject;
    public IEnumerable<T> All<T>() => Output.Select(o => (T)o.BaseObject);

    /// <summary>Throws with every error's text when the run produced any error.</summary>
    public PsResult AssertNoErrors()
    {
        if (Terminating is not null) throw new Xunit.Sdk.XunitException("Terminating error: " + Terminating);
        if (Errors.Count > 0)
            throw new Xunit.Sdk.XunitException("Errors: " + string.Join(Environment.NewLine, Errors.Select(e => $"{e.FullyQualifiedErrorId}: {e.Exception?.Message}")));
        return this;
    }

    public ErrorRecord SingleError()
    {
        if (Terminating is not null && Errors.Count == 0) throw new Xunit.Sdk.XunitException("Terminating error instead of an error record: " + Terminating);
        Xunit.Assert.Single(Errors);
        return Errors[0];
    }
}

/// <summary>
/// One runspace (one per test) with the built module imported through its manifest, as a user would.
/// Only Microsoft.PowerShell.Core commands exist besides the module's: scripts use the language and .NET.
/// </summary>
public sealed class PowerShellSession : IDisposable
{
    public static string ManifestPath { get; } = Path.Combine(AppContext.BaseDirectory, "KvmSnapshot.psd1");

    private readonly Runspace _runspace;
    private PowerShell? _running;

    public PowerShellSession(bool importModule = true)
    {
        Host = new RecordingHost();
        var iss = InitialSessionState.CreateDefault2();
        _runspace = RunspaceFactory.CreateRunspace(Host, iss);
        _runspace.Open();
        if (importModule)
        {
            Run("Import-Module -Name $args[0] -ErrorAction Stop", ManifestPath).AssertNoErrors();
        }
    }

    public RecordingHost Host { get; }

    public void SetVariable(string name, object? value) => _runspace.SessionStateProxy.SetVariable(name, value);

    /// <summary>Runs a script; positional arguments are available as $args.</summary>
    public PsResult Run(string script, params object?[] args)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        foreach (var a in args) ps.AddArgument(a);
        _running = ps;
        IReadOnlyList<PSObject> output = Array.Empty<PSObject>();
        Exception? terminating = null;
        try
        {
            output = ps.Invoke().ToList();
        }
        catch (RuntimeException e)
        {
            terminating = e;
        }
        finally
        {
            _running = null;
        }
        return new PsResult
        {
            Output = output,
            Errors = ps.Streams.Error.ToList(),
            Verbose = ps.Streams.Verbose.Select(v => v.Message).ToList(),
            Warnings = ps.Streams.Warning.Select(v => v.Message).ToList(),
            Progress = ps.Streams.Progress.ToList(),
            HostText = Host.Recorder.Text,
            Terminating = terminating,
        };
    }

    /// <summary>Runs a script and presses Ctrl+C (PowerShell.Stop) once <paramref name="stopWhen"/> holds.</summary>
    public PsResult RunAndStop(string script, Func<PowerShell, bool> stopWhen, TimeSpan timeout, params object?[] args)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        foreach (var a in args) ps.AddArgument(a);
        var output = new PSDataCollection<PSObject>();
        var handle = ps.BeginInvoke<PSObject, PSObject>(null, output);
        var deadline = DateTime.UtcNow + timeout;
        while (!handle.IsCompleted && DateTime.UtcNow < deadline)
        {
            if (stopWhen(ps)) { ps.Stop(); break; }
            Task.Delay(20).Wait();
        }
        Exception? terminating = null;
        try { ps.EndInvoke(handle); } catch (Exception e) { terminating = e; }
        return new PsResult
        {
            Output = output.ToList(),
            Errors = ps.Streams.Error.ToList(),
            Verbose = ps.Streams.Verbose.Select(v => v.Message).ToList(),
            Warnings = ps.Streams.Warning.Select(v => v.Message).ToList(),
            Progress = ps.Streams.Progress.ToList(),
            HostText = Host.Recorder.Text,
            Terminating = terminating,
        };
    }

    public void Dispose()
    {
        _running?.Stop();
        _runspace.Dispose();
    }
}
