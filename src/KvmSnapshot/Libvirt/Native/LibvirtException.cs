using KvmSnapshot.Errors;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>A libvirt failure mapped onto the module's ErrorIds (by LibvirtErrorTable, beside it); keeps libvirt's own code and message.</summary>
public sealed class LibvirtException : KvmSnapshotException
{
    internal LibvirtException(string errorId, KvmErrorKind category, object? target, string message, int code, int domain, string libvirtMessage)
        : base(errorId, category, target, message)
    {
        LibvirtCode = code;
        LibvirtDomain = domain;
        LibvirtMessage = libvirtMessage;
    }

    /// <summary>virErrorNumber (VIR_ERR_*).</summary>
    public int LibvirtCode { get; }

    /// <summary>virErrorDomain (VIR_FROM_*): the libvirt module that reported the error.</summary>
    public int LibvirtDomain { get; }

    public string LibvirtMessage { get; }
}
