using System;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

/// <summary>
/// Changes LIBVIRT_DEFAULT_URI for the whole process for a moment, so it runs in the libvirt daemon collection: the
/// tests there that rely on the default URI (offline cmdlets asking the local libvirt who uses a file, positional
/// -Domain) never run while it is changed.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class DefaultUriTests
{
    [Fact]
    public void The_default_uri_comes_from_LIBVIRT_DEFAULT_URI_then_libvirt()
    {
        var previous = Environment.GetEnvironmentVariable(LibvirtConnection.DefaultUriVariable);
        try
        {
            Environment.SetEnvironmentVariable(LibvirtConnection.DefaultUriVariable, "test:///default");
            Assert.Equal("test:///default", LibvirtConnection.EffectiveUri(null));
            Assert.Equal("qemu:///system", LibvirtConnection.EffectiveUri("qemu:///system"));
            Assert.Equal("test:///default", LiveEngine.Default.ResolveUri(null));
            Environment.SetEnvironmentVariable(LibvirtConnection.DefaultUriVariable, null);
            Assert.Null(LibvirtConnection.EffectiveUri(null));
        }
        finally
        {
            Environment.SetEnvironmentVariable(LibvirtConnection.DefaultUriVariable, previous);
        }
    }
}
