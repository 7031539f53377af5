using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Xml.Linq;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Fleet;

/// <summary>
/// One domain shared by the fleet tests (they only read it, or ask -WhatIf), reached through two URIs of the one
/// real libvirtd (qemu:///system and qemu+unix:// on its socket) and one URI nothing answers on.
/// </summary>
public sealed class FleetDomain : IDisposable
{
    public FleetDomain()
    {
        Domain = TestDomain.Create("fleet");
        using var ps = new PowerShellSession();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name f1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $args[2]",
            Domain.Name, Domain.File("f1.qcow2"), FleetCmdletTests.Local).AssertNoErrors();
    }

    public TestDomain Domain { get; }

    public void Dispose() => Domain.Dispose();
}

[Collection(LibvirtCollection.Name)]
public sealed class FleetCmdletTests : IClassFixture<FleetDomain>
{
    public const string Local = LibvirtDaemonFixture.Uri;
    public const string Socket = "qemu+unix:///system?socket=/run/libvirt/libvirt-sock";
    private const string SocketLabel = "qemu+unix:///system";
    private const string Nowhere = "qemu+unix:///system?socket=/run/kvmsnap-t-nothing-listens.sock";

    private readonly FleetDomain _fleet;

    public FleetCmdletTests(FleetDomain fleet) => _fleet = fleet;

    /// <summary>
    /// A loopback port that accepts connections (the kernel's backlog completes the handshake) and never says a word,
    /// as the qemu+ssh:// host <see cref="Uri"/>: ssh waits for a banner that never comes, so libvirt's open never
    /// returns by itself. Disposing closes the port, which ends the stuck ssh and the open left behind with it.
    /// </summary>
    private sealed class SilentHost : IDisposable
    {
        private readonly System.Net.Sockets.TcpListener _listener;

        private SilentHost()
        {
            _listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            _listener.Start();
        }

        public static SilentHost Start() => new();

        public int Port => ((System.Net.IPEndPoint)_listener.LocalEndpoint).Port;

        public string Uri => $"qemu+ssh://root@127.0.0.1:{Port}/system?no_verify=1";

        public void Dispose() => _listener.Stop();
    }

    private PowerShellSession Session()
    {
        var ps = new PowerShellSession();
        ps.SetVariable("d", _fleet.Domain.Name);
        ps.SetVariable("a", Local);
        ps.SetVariable("b", Socket);
        ps.SetVariable("nowhere", Nowhere);
        return ps;
    }

    [Theory]
    [InlineData("Get-KvmSnapshot -Domain $d", "DomainSnapshot")]
    [InlineData("Get-KvmDomain -Domain $d", "KvmDomain")]
    [InlineData("Get-KvmDomainDisk -Domain $d -Disk vda", "DomainDisk")]
    [InlineData("Get-KvmSnapshotChain -Domain $d", "SnapshotChain")]
    [InlineData("Test-KvmSnapshotChain -Domain $d -SkipImageCheck", "SnapshotChainTestResult")]
    public void Reads_over_two_URIs_come_in_their_order_with_a_Host_and_one_URI_is_unchanged(string command, string type)
    {
        using var ps = Session();
        var two = ps.Run(command + " -ConnectionUri $a, $b").AssertNoErrors().Output;
        Assert.Equal(2, two.Count);
        Assert.Equal(new[] { Local, Socket }, two.Select(o => (string?)o.Properties["ConnectionUri"].Value));
        Assert.All(two, o => Assert.Equal($"KvmSnapshot.Model.{type}#MultiHost", o.TypeNames[0]));
        Assert.All(two, o => Assert.Equal($"KvmSnapshot.Model.{type}", o.TypeNames[1]));
        Assert.All(two, o => Assert.Equal(System.Net.Dns.GetHostName(), o.Properties["Host"]?.Value));

        var one = Assert.Single(ps.Run(command + " -ConnectionUri $b").AssertNoErrors().Output);
        Assert.Equal($"KvmSnapshot.Model.{type}", one.TypeNames[0]);
        Assert.Null(one.Properties["Host"]);
        Assert.Equal(Socket, one.Properties["ConnectionUri"].Value);
    }

    [Fact]
    public void A_host_that_does_not_answer_is_an_error_naming_it_and_the_others_objects_still_come()
    {
        using var ps = Session();
        var result = ps.Run("Get-KvmSnapshot -Domain $d -ConnectionUri $a, $nowhere, $b -Verbose");
        Assert.Null(result.Terminating);
        Assert.Equal(new[] { Local, Socket }, result.Output.Select(o => (string?)o.Properties["ConnectionUri"].Value));
        var error = Assert.Single(result.Errors);
        Assert.StartsWith("ConnectionFailed,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Contains("kvmsnap-t-nothing-listens.sock", error.ErrorDetails?.Message ?? error.Exception.Message, StringComparison.Ordinal);
        // Verbose lines say which host they are about.
        Assert.NotEmpty(result.Verbose);
        Assert.All(result.Verbose, v => Assert.True(v.StartsWith(Local + ": ", StringComparison.Ordinal) || v.StartsWith(SocketLabel + ": ", StringComparison.Ordinal)
            || v.StartsWith("qemu+unix:///system: ", StringComparison.Ordinal), v));
    }

    [Fact]
    public void A_state_change_over_two_URIs_is_asked_per_host_naming_it_and_WhatIf_changes_nothing()
    {
        using var ps = Session();
        var result = ps.Run("New-KvmSnapshot -Domain $d -Name fleet-w -ConnectionUri $a, $b -WhatIf").AssertNoErrors();
        Assert.Empty(result.Output);
        var lines = result.HostText.Split('\n').Where(l => l.StartsWith("What if:", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 2, result.HostText);
        Assert.True(lines.Any(l => l.Contains($"{_fleet.Domain.Name} on {Local}\"", StringComparison.Ordinal)), result.HostText);
        Assert.Contains(lines, l => l.Contains($"{_fleet.Domain.Name} on {SocketLabel}\"", StringComparison.Ordinal));
        Assert.DoesNotContain("fleet-w", LibvirtDaemonFixture.Virsh("snapshot-list", _fleet.Domain.Name, "--name").StdOut, StringComparison.Ordinal);
        // One URI: the target is the domain, as before.
        var one = ps.Run("New-KvmSnapshot -Domain $d -Name fleet-w -ConnectionUri $a -WhatIf").AssertNoErrors();
        Assert.Contains($"on target \"{_fleet.Domain.Name}\"", one.HostText, StringComparison.Ordinal);
    }

    [Fact]
    public void Confirmations_come_in_the_URIs_order_when_the_first_host_plans_last()
    {
        // The first URI reaches the real daemon through a relay that holds back each answer 100 ms: it plans last.
        using var slow = new KvmSnapshot.Tests.Infrastructure.SlowSocketRelay(TimeSpan.FromMilliseconds(100));
        using var ps = Session();
        ps.SetVariable("slow", slow.Uri);
        var d = _fleet.Domain.Name;

        var whatIf = ps.Run("New-KvmSnapshot -Domain $d -Name fleet-o -ConnectionUri $slow, $a -WhatIf").AssertNoErrors();
        var lines = whatIf.HostText.Split('\n').Where(l => l.StartsWith("What if:", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 2, whatIf.HostText);
        Assert.Contains($"{d} on {SocketLabel}\"", lines[0], StringComparison.Ordinal);
        Assert.Contains($"{d} on {Local}\"", lines[1], StringComparison.Ordinal);

        // -Confirm, answered No: the prompts in the same order, and nothing made.
        ps.Host.Recorder.ChoiceAnswer = 2;
        ps.Run("New-KvmSnapshot -Domain $d -Name fleet-o -ConnectionUri $slow, $a -Confirm").AssertNoErrors();
        Assert.Equal(2, ps.Host.Recorder.Prompts.Count);
        Assert.Contains($"{d} on {SocketLabel}\"", ps.Host.Recorder.Prompts[0], StringComparison.Ordinal);
        Assert.Contains($"{d} on {Local}\"", ps.Host.Recorder.Prompts[1], StringComparison.Ordinal);
        Assert.DoesNotContain("fleet-o", LibvirtDaemonFixture.Virsh("snapshot-list", d, "--name").StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void Piped_objects_carry_their_own_URI_into_the_next_cmdlet()
    {
        using var ps = Session();
        var snapshots = ps.Run("Get-KvmDomain -Domain $d -ConnectionUri $a, $b | Get-KvmSnapshot").AssertNoErrors().Output;
        Assert.Equal(new[] { Local, Socket }, snapshots.Select(o => (string?)o.Properties["ConnectionUri"].Value));
        // Input of a multi-host call keeps the pipeline multi-host: the Host column's type name and the Host.
        Assert.All(snapshots, o => Assert.Equal("KvmSnapshot.Model.DomainSnapshot#MultiHost", o.TypeNames[0]));
        Assert.All(snapshots, o => Assert.Equal(System.Net.Dns.GetHostName(), o.Properties["Host"]?.Value));
        // ...through two cmdlets, and through several records of one (each domain object is a record).
        var chains = ps.Run("Get-KvmDomain -Domain $d -ConnectionUri $a, $b | Get-KvmDomainDisk | Get-KvmSnapshotChain").AssertNoErrors().Output;
        Assert.Equal(2, chains.Count);
        Assert.All(chains, o => Assert.Equal("KvmSnapshot.Model.SnapshotChain#MultiHost", o.TypeNames[0]));

        // Input of one host, or given as arguments: no Host.
        var one = Assert.Single(ps.Run("Get-KvmDomain -Domain $d -ConnectionUri $a | Get-KvmSnapshot").AssertNoErrors().Output);
        Assert.Equal("KvmSnapshot.Model.DomainSnapshot", one.TypeNames[0]);
        Assert.Null(one.Properties["Host"]);
        var named = Assert.Single(ps.Run("$x = Get-KvmDomain -Domain $d -ConnectionUri $a, $b; Get-KvmSnapshot -Domain $x[0].Domain -ConnectionUri $x[0].ConnectionUri").AssertNoErrors().Output);
        Assert.Null(named.Properties["Host"]);
    }

    [Fact]
    public void Ctrl_C_stops_every_host_even_one_that_never_answers()
    {
        using var silent = SilentHost.Start();
        using var ps = Session();
        ps.SetVariable("hung", silent.Uri);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan? pressed = null;
        var result = ps.RunAndStop("Get-KvmDomain -Domain $d -ConnectionUri $a, $hung", _ =>
        {
            if (watch.Elapsed < TimeSpan.FromSeconds(2)) return false;
            pressed = watch.Elapsed;
            return true;
        }, TimeSpan.FromSeconds(60));
        Assert.NotNull(pressed);
        // Stopped within the grace time of the stuck host, not when its connection gives up.
        Assert.InRange((watch.Elapsed - pressed!.Value).TotalSeconds, 0, 8);
        Assert.IsAssignableFrom<PipelineStoppedException>(result.Terminating);
        // The host that answered, first in order, is written as soon as it is done (normally before the stop); the
        // stuck host wrote nothing.
        Assert.InRange(result.Output.Count, 0, 1);
        Assert.All(result.Output, o => Assert.Equal(Local, o.Properties["ConnectionUri"].Value));
    }

    [Fact]
    public void A_host_that_accepts_and_never_answers_is_an_error_after_the_connect_timeout_and_the_others_objects_still_come()
    {
        using var silent = SilentHost.Start();
        using var ps = Session();
        ps.SetVariable("hung", silent.Uri);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = ps.Run("$KvmSnapshotConnectTimeout = 1.5; Get-KvmDomain -Domain $d -ConnectionUri $a, $hung, $b");
        Assert.InRange(watch.Elapsed.TotalSeconds, 1.5, 20);
        Assert.Null(result.Terminating);
        Assert.Equal(new[] { Local, Socket }, result.Output.Select(o => (string?)o.Properties["ConnectionUri"].Value));
        var error = Assert.Single(result.Errors);
        Assert.StartsWith("ConnectionFailed,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Equal(ErrorCategory.ConnectionError, error.CategoryInfo.Category);
        var message = error.ErrorDetails?.Message ?? error.Exception.Message;
        Assert.Contains($"127.0.0.1:{silent.Port}", message, StringComparison.Ordinal);
        Assert.Contains("no answer within 1.5 s", message, StringComparison.Ordinal);

        // A value that is no timeout: a (statement-)terminating typed error before any host is asked, and one
        // for a single host too.
        foreach (var (bad, uris) in new[] { ("'soon'", "$a, $b"), ("-5", "$a, $b"), ("[datetime]::Now", "$a") })
        {
            var refused = ps.Run($"$KvmSnapshotConnectTimeout = {bad}; Get-KvmDomain -Domain $d -ConnectionUri {uris}; 'after'");
            Assert.Equal(new object[] { "after" }, refused.Output.Select(o => o.BaseObject));
            var record = Assert.Single(refused.Errors);
            Assert.StartsWith("ConnectTimeoutInvalid,", record.FullyQualifiedErrorId, StringComparison.Ordinal);
            Assert.Equal(ErrorCategory.InvalidArgument, record.CategoryInfo.Category);
        }
    }

    [Fact]
    public void Every_live_view_has_a_MultiHost_twin_with_a_Host_column_first()
    {
        var plain = XDocument.Load(Path.Combine(AppContext.BaseDirectory, "KvmSnapshot.Format.ps1xml")).Descendants("View").ToList();
        var multi = XDocument.Load(Path.Combine(AppContext.BaseDirectory, "KvmSnapshot.MultiHost.Format.ps1xml")).Descendants("View").ToList();
        _ = new System.Management.Automation.Runspaces.FormatTable(new[] { Path.Combine(AppContext.BaseDirectory, "KvmSnapshot.MultiHost.Format.ps1xml") });
        // Every model type with a ConnectionUri property that a cmdlet writes has a twin (a ChainLayer comes inside its chain).
        var live = typeof(KvmSnapshot.Model.SnapshotChain).Assembly.GetExportedTypes()
            .Where(t => t.Namespace == "KvmSnapshot.Model" && t.GetProperty("ConnectionUri") is not null && t != typeof(KvmSnapshot.Model.ChainLayer)).Select(t => t.FullName + "#MultiHost").ToHashSet();
        Assert.Equal(live.OrderBy(x => x), multi.Select(v => v.Descendants("TypeName").Single().Value).OrderBy(x => x));
        foreach (var twin in multi)
        {
            var typeName = twin.Descendants("TypeName").Single().Value;
            var original = plain.Single(v => v.Descendants("TypeName").Single().Value + "#MultiHost" == typeName);
            var headers = twin.Descendants("TableColumnHeader").Select(h => h.ToString()).ToList();
            var items = twin.Descendants("TableColumnItem").Select(h => h.ToString()).ToList();
            Assert.Equal("Host", XElement.Parse(headers[0]).Value);
            Assert.Equal("Host", XElement.Parse(items[0]).Value);
            Assert.Equal(original.Descendants("TableColumnHeader").Select(h => h.ToString()), headers.Skip(1));
            Assert.Equal(original.Descendants("TableColumnItem").Select(h => h.ToString()), items.Skip(1));
        }
    }

    [Fact]
    public void The_engines_reports_come_as_WriteVerbose_would_show_them_and_are_dropped_otherwise()
    {
        // Reports are dropped where they are made when Write-Verbose would drop them (issue 8: one per snapshot was
        // queued to the pipeline thread for nothing); -Verbose, -Verbose:$false and $VerbosePreference decide as before.
        using var ps = Session();
        static bool Xml(string v) => v.Contains("virDomainSnapshotGetXMLDesc(", StringComparison.Ordinal);
        Assert.Empty(ps.Run("Get-KvmSnapshot -Domain $d -ConnectionUri $a").AssertNoErrors().Verbose);
        Assert.Contains(ps.Run("Get-KvmSnapshot -Domain $d -ConnectionUri $a -Verbose").AssertNoErrors().Verbose, Xml);
        Assert.Contains(ps.Run("$VerbosePreference = 'Continue'; Get-KvmSnapshot -Domain $d -ConnectionUri $a").AssertNoErrors().Verbose, Xml);
        Assert.Empty(ps.Run("$VerbosePreference = 'Continue'; Get-KvmSnapshot -Domain $d -ConnectionUri $a -Verbose:$false").AssertNoErrors().Verbose);
        Assert.Empty(ps.Run("$VerbosePreference = 'SilentlyContinue'; Get-KvmSnapshot -Domain $d -ConnectionUri $a, $b").AssertNoErrors().Verbose);
        var both = ps.Run("$VerbosePreference = 'Continue'; Get-KvmSnapshot -Domain $d -ConnectionUri $a, $b").AssertNoErrors().Verbose;
        Assert.Contains(both, v => v.StartsWith(Local + ": ", StringComparison.Ordinal) && Xml(v));
        Assert.Contains(both, v => v.StartsWith(SocketLabel + ": ", StringComparison.Ordinal) && Xml(v));
    }
}
