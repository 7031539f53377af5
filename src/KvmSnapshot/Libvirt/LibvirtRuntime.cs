using System;
using System.Threading;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// One-time process setup before the first connection: virInitialize, a silent error handler, and libvirt's default
/// event loop driven by a dedicated background thread. Events (block job completion) and keepalive both need the
/// loop, and it must be registered before a connection is opened for that connection to use it.
/// </summary>
internal static class LibvirtRuntime
{
    private static readonly Lazy<Thread> EventThread = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Throws LibvirtNotAvailable (cached) when libvirt cannot be loaded.</summary>
    public static void EnsureInitialized() => _ = EventThread.Value;

    private static Thread Start()
    {
        Virt.Initialize();
        Virt.SilenceErrorPrinting();
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
