using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

internal static unsafe partial class Virt
{
    // The same function as virConnectDomainEventRegisterAny in Virt.Host.cs, with a domain to filter on.
    [LibraryImport(Lib, EntryPoint = "virConnectDomainEventRegisterAny")]
    private static partial int virConnectDomainEventRegisterAnyForDomain(ConnectHandle conn, DomainHandle dom, int eventId, IntPtr callback, IntPtr opaque, IntPtr freeCallback);

    // int virTypedParamsGetInt(virTypedParameterPtr params, int nparams, const char *name, int *value)
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int virTypedParamsGetInt(IntPtr parameters, int nparams, string name, out int value);

    /// <summary>
    /// Registers <paramref name="callback"/> for <paramref name="eventId"/> of one domain. libvirt frees
    /// <paramref name="opaque"/> with <paramref name="freeCallback"/> after deregistration; when registration fails
    /// it does not, and the opaque is freed here.
    /// </summary>
    public static int ConnectDomainEventRegisterAnyForDomain(ConnectHandle conn, DomainHandle dom, DomainEventId eventId, IntPtr callback, IntPtr opaque, IntPtr freeCallback, object? target)
    {
        LibvirtLibrary.Require("virConnectDomainEventRegisterAny");
        var id = virConnectDomainEventRegisterAnyForDomain(conn, dom, (int)eventId, callback, opaque, freeCallback);
        if (id < 0)
        {
            var failure = Fail(LibvirtCallArea.General, target);
            NativeCallbacksFree(opaque);
            throw failure;
        }
        return id;
    }

    /// <summary>virTypedParamsGetInt: the int parameter <paramref name="name"/>, or null when the list has none (or on error).</summary>
    public static int? TypedParamsGetInt(IntPtr parameters, int nparams, string name)
    {
        if (!LibvirtLibrary.Has("virTypedParamsGetInt")) return null;
        return virTypedParamsGetInt(parameters, nparams, name, out var value) == 1 ? value : null;
    }
}
