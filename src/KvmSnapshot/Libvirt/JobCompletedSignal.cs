using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// libvirt's VIR_DOMAIN_EVENT_ID_JOB_COMPLETED for one domain, registered before the job starts (so its end cannot be
/// missed) and deregistered when disposed. The callback runs on the event loop thread and only sets the signal,
/// when the event's operation is the one waited for (another client's job on the domain does not end the wait).
/// </summary>
internal sealed class JobCompletedSignal : IDisposable
{
    /// <summary>VIR_DOMAIN_JOB_OPERATION_BACKUP.</summary>
    public const int BackupOperation = 9;

    private readonly ManualResetEventSlim _ended = new(false);
    private readonly ConnectHandle _connection;
    private readonly int _operation;
    private readonly int _callbackId;
    private readonly IDisposable? _owner;
    private long _timestamp;
    private int _disposed;

    private JobCompletedSignal(ConnectHandle connection, DomainHandle domain, int operation, string target, IDisposable? owner)
    {
        _owner = owner;
        _connection = connection;
        _operation = operation;
        _callbackId = Virt.ConnectDomainEventRegisterAnyForDomain(connection, domain, DomainEventId.JobCompleted, CallbackPointer,
            NativeCallbacks.Opaque(this), NativeCallbacks.FreeOpaquePointer, target);
    }

    /// <summary>
    /// Registers for the domain's job-completed events of <paramref name="operation"/>; <paramref name="owner"/>
    /// (what holds <paramref name="connection"/> open, or null) is disposed with the registration.
    /// </summary>
    public static JobCompletedSignal Register(ConnectHandle connection, DomainHandle domain, int operation, string target, IDisposable? owner)
        => new(connection, domain, operation, target, owner);

    public bool IsSet => _ended.IsSet;

    public WaitHandle WaitHandle => _ended.WaitHandle;

    /// <summary>The <see cref="Stopwatch"/> timestamp taken in the callback (0 while no event came).</summary>
    public long Timestamp => Interlocked.Read(ref _timestamp);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // libvirt frees the opaque once it will not call back; a late callback finds no receiver. The wait handle
        // is left to the GC, so a callback in flight never touches a disposed one.
        Virt.ConnectDomainEventDeregisterAny(_connection, _callbackId);
        _owner?.Dispose();
    }

    private static unsafe IntPtr CallbackPointer
    {
        get
        {
            // virConnectDomainEventJobCompletedCallback(conn, dom, virTypedParameterPtr params, int nparams, void *opaque)
            delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, int, IntPtr, void> cb = &OnJobCompleted;
            return (IntPtr)cb;
        }
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static void OnJobCompleted(IntPtr conn, IntPtr dom, IntPtr parameters, int nparams, IntPtr opaque)
    {
        var timestamp = Stopwatch.GetTimestamp();
        try
        {
            if (NativeCallbacks.Target(opaque) is not JobCompletedSignal signal) return;
            var operation = Virt.TypedParamsGetInt(parameters, nparams, "operation");
            if (operation is not null && operation != signal._operation) return;
            Interlocked.CompareExchange(ref signal._timestamp, timestamp, 0);
            signal._ended.Set();
        }
        catch (Exception)
        {
            // An exception must never unwind into libvirt's event loop.
        }
    }
}
