using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace KvmSnapshot.Tests.Infrastructure;

/// <summary>
/// A unix socket in a temporary folder that relays every connection to the real libvirtd socket, each byte the
/// daemon sends held back by <see cref="Delay"/>: the real daemon behind a slow link (qemu+unix:///system?socket=…).
/// Disposing it closes the socket, the connections and the folder.
/// </summary>
public sealed class SlowSocketRelay : IDisposable
{
    private const string DaemonSocket = "/run/libvirt/libvirt-sock";
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private readonly TempDirectory _dir = new("relay");

    public SlowSocketRelay(TimeSpan delay)
    {
        Delay = delay;
        Path = _dir.File("libvirt-sock");
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(16);
        _ = Task.Run(AcceptAsync);
    }

    public TimeSpan Delay { get; }

    public string Path { get; }

    public string Uri => $"qemu+unix:///system?socket={Path}";

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(Socket client)
    {
        using var daemon = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var _ = client;
        try
        {
            await daemon.ConnectAsync(new UnixDomainSocketEndPoint(DaemonSocket), _stop.Token);
            await using var toClient = new NetworkStream(client, ownsSocket: false);
            await using var toDaemon = new NetworkStream(daemon, ownsSocket: false);
            var up = toClient.CopyToAsync(toDaemon, _stop.Token);
            var down = SlowCopyAsync(toDaemon, toClient);
            await Task.WhenAny(up, down);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task SlowCopyAsync(Stream from, Stream to)
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
        {
            await Task.Delay(Delay, _stop.Token);
            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        _dir.Dispose();
        _stop.Dispose();
    }
}
