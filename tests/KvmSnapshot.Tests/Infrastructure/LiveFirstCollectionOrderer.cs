using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Tests.Live;
using Xunit;
using Xunit.Abstractions;

[assembly: TestCollectionOrderer("KvmSnapshot.Tests.Infrastructure.LiveFirstCollectionOrderer", "KvmSnapshot.Tests")]

namespace KvmSnapshot.Tests.Infrastructure;

/// <summary>
/// Starts the live collection (every test class on the shared libvirtd, run one after the other: the longest chain
/// of the run, about 7 minutes) first, so the other collections run beside it on the second thread instead of
/// before it. xunit's own order is by collection id, which started it about 2 minutes into the run. The other
/// collections keep the order they come in; collections that disable parallelization (the libvirtd restart tests)
/// still run alone, after all others. The short hang collection comes before the live one, and its relays are
/// prepared here, before any test runs (LeanRelays).
/// </summary>
public sealed class LiveFirstCollectionOrderer : ITestCollectionOrderer
{
    /// <summary>One per test of the hang collection that needs a lean connection.</summary>
    private const int HangRelayCount = 8;

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections)
    {
        var all = testCollections.ToList();
        static bool IsLive(ITestCollection c) => string.Equals(c.DisplayName, LibvirtCollection.Name, StringComparison.Ordinal);
        // Before any test can register libvirt's event loop: the hang tests' lean connections (see LeanRelays).
        if (all.Any(c => string.Equals(c.DisplayName, LeanConnectionHangCollection.Name, StringComparison.Ordinal)))
        {
            try
            {
                LeanRelays.Prepare(HangRelayCount);
            }
            catch (Exception e)
            {
                // libvirtd not up yet: the tests open their relays' connections themselves (and say when they are not lean).
                LeanRelays.PrepareFailure = e.Message;
            }
        }
        // The hang collection first, beside the live one: its relays' lean connections were prepared before any test
        // (a libvirtd restart, or anything else in a long run, could close them meanwhile).
        static bool IsHang(ITestCollection c) => string.Equals(c.DisplayName, LeanConnectionHangCollection.Name, StringComparison.Ordinal);
        return all.Where(IsHang).Concat(all.Where(IsLive)).Concat(all.Where(c => !IsLive(c) && !IsHang(c)));
    }
}
