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
/// still run alone, after all others.
/// </summary>
public sealed class LiveFirstCollectionOrderer : ITestCollectionOrderer
{
    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections)
    {
        var all = testCollections.ToList();
        static bool IsLive(ITestCollection c) => string.Equals(c.DisplayName, LibvirtCollection.Name, StringComparison.Ordinal);
        return all.Where(IsLive).Concat(all.Where(c => !IsLive(c)));
    }
}
