using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Linq;

namespace KvmSnapshot.Model;

/// <summary>
/// A read-only list whose text is its items, not its type name: Export-Csv and string expansion write a list
/// property as <c>s2, s3</c> or <c>vda:external:/vm/a.qcow2; vdb:no</c> instead of <c>System.String[]</c>.
/// ConvertTo-Json still writes it as an array. The Model types wrap every list property in one.
/// </summary>
public sealed class DisplayList<T> : ReadOnlyCollection<T>
{
    public static readonly DisplayList<T> None = new(Array.Empty<T>(), ", ");

    private readonly string _separator;

    public DisplayList(IList<T> items, string separator) : base(items) => _separator = separator;

    public override string ToString() => string.Join(_separator, this.Select(i => i?.ToString()));
}

/// <summary>Builds <see cref="DisplayList{T}"/>s.</summary>
public static class DisplayList
{
    public static IReadOnlyList<T> Of<T>(IEnumerable<T>? items, string separator = ", ")
        => items is DisplayList<T> list ? list : items is null ? DisplayList<T>.None : new DisplayList<T>(items.ToArray(), separator);
}
