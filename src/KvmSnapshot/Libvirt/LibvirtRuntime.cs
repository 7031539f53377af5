using System;
using System.Threading;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// One-time process setup: virInitialize and a silent error handler before the first connection, and libvirt's
/// default event loop, driven by a dedicated background thread, on the first real need for it. Events (block job
/// completion, the backup's job-completed event) and keepalive need the loop, and a connection uses it only when the
/// loop was registered before the connection was opened. The loop is not free: every call on a connection that uses
/// it wakes the loop thread (libvirt moves the socket's watch off the loop for the call and back), which more than
/// doubled the client CPU of 1,000 snapshot XML calls (docs/architecture.md, "Speed"); so connections that need no
/// events are opened before it exists (<see cref="LibvirtConnection.Get"/>).
/// </summary>
internal static class LibvirtRuntime
{
    // Lazy<object>, not Lazy<bool>: generic code over a value type is compiled on the first call of a session.
    private static readonly Lazy<object> Library = new(() => Initialize(), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<Thread> EventThread = new(StartEventLoop, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Throws LibvirtNotAvailable (cached) when libvirt cannot be loaded.</summary>
    public static void EnsureInitialized() => _ = Library.Value;

    /// <summary>Registers the event loop (once); connections opened from then on use it.</summary>
    public static void EnsureEventLoop()
    {
        EnsureInitialized();
        _ = EventThread.Value;
    }

    /// <summary>True once the event loop is registered: every connection opened from then on uses it.</summary>
    public static bool HasEventLoop => EventThread.IsValueCreated;

    private static bool Initialize()
    {
        Virt.Initialize();
        Virt.SilenceErrorPrinting();
        return true;
    }

    private static Thread StartEventLoop()
    {
        Virt.EventRegisterDefaultImpl();
        var thread = new Thread(RunEventLoop) { IsBackground = true, Name = "libvirt event loop" };
        thread.Start();
        return thread;
    }

    private static void RunEventLoop()
    {
        // Runs for the life of the process; virEventRunDefaultImpl blocks until a timer or file descriptor fires.
        while (true)
        {
            if (!Virt.EventRunDefaultImpl(out _))
            {
                Thread.Sleep(100); // a failing iteration must not spin a core
            }
        }
    }
}
