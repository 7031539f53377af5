using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using KvmSnapshot.Libvirt.Native;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

/// <summary>Ownership of the pointer arrays libvirt's list-all functions return.</summary>
public sealed class LibvirtListOwnershipTests
{
    private sealed class FakeHandle : IDisposable
    {
        private readonly List<IntPtr> _released;
        public FakeHandle(IntPtr raw, List<IntPtr> released) { Raw = raw; _released = released; }
        public IntPtr Raw { get; }
        public void Dispose() => _released.Add(Raw);
    }

    private static IntPtr NativeArray(params long[] pointers)
    {
        var array = Marshal.AllocHGlobal(IntPtr.Size * Math.Max(1, pointers.Length));
        for (var i = 0; i < pointers.Length; i++) Marshal.WriteIntPtr(array, i * IntPtr.Size, (IntPtr)pointers[i]);
        return array;
    }

    [Fact]
    public void Adopting_every_element_frees_only_the_array()
    {
        var array = NativeArray(0x10, 0x20, 0x30);
        var freed = new List<IntPtr>();
        var arrays = new List<IntPtr>();
        try
        {
            var handles = Virt.AdoptAll(array, 3, raw => new FakeHandle(raw, freed), raw => { freed.Add(raw); return 0; }, arrays.Add);
            Assert.Equal(new IntPtr[] { 0x10, 0x20, 0x30 }, Array.ConvertAll(handles, h => h.Raw));
            Assert.Empty(freed);
            Assert.Equal(new[] { array }, arrays);
        }
        finally
        {
            Marshal.FreeHGlobal(array);
        }
    }

    [Fact]
    public void A_failure_part_way_releases_the_adopted_handles_every_remaining_pointer_and_the_array()
    {
        var array = NativeArray(0x10, 0x20, 0x30, 0x40, 0x50);
        var released = new List<IntPtr>();
        var arrays = new List<IntPtr>();
        try
        {
            Assert.Throws<ObjectDisposedException>(() => Virt.AdoptAll(array, 5, raw =>
                raw == (IntPtr)0x30 ? throw new ObjectDisposedException("domain") : new FakeHandle(raw, released),
                raw => { released.Add(raw); return 0; }, arrays.Add));

            // 0x10 and 0x20 through their handles, 0x30 (whose adoption failed) to 0x50 raw: each exactly once.
            Assert.Equal(new IntPtr[] { 0x10, 0x20, 0x30, 0x40, 0x50 }, released.ToArray());
            Assert.Equal(new[] { array }, arrays);
        }
        finally
        {
            Marshal.FreeHGlobal(array);
        }
    }
}
