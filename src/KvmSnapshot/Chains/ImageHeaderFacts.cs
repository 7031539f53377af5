using System;
using System.IO;
using System.Threading;
using KvmSnapshot.Errors;
using KvmSnapshot.Qcow2;

namespace KvmSnapshot.Chains;

/// <summary>
/// What one read of a file tells about it, before any decision about the format it is opened as: whether it is
/// there, its identity and allocation, the format its content looks like, its qcow2 header when the content is qcow2,
/// and its length. Reading is the slow part of a catalog lookup (system calls and page-cache copies); deciding the
/// format from these facts is pure. So a store scan reads many files' facts at once, on several threads and while
/// libvirt is still being asked which formats it records, and <see cref="ImageCatalog"/> decides afterwards on the
/// caller's thread. Failures are kept, not thrown, and raised where the sequential read would have raised them.
/// </summary>
internal sealed record ImageHeaderFacts
{
    private ImageHeaderFacts(string path) => Path = path;

    public string Path { get; }
    /// <summary>The path is a directory (or a symlink to one).</summary>
    public bool IsDirectory { get; private init; }
    /// <summary>Nothing is there (or a dangling symlink): File.Exists is false.</summary>
    public bool Missing { get; private init; }
    public HostFileFacts File { get; private init; }
    /// <summary>The file could not be opened (permission, FIFO, a race).</summary>
    public KvmSnapshotException? OpenError { get; private init; }
    /// <summary>Reading the magic failed (EIO).</summary>
    public IOException? ProbeError { get; private init; }
    /// <summary>The format the content looks like (<see cref="ImageFormatProbe"/>).</summary>
    public string? Content { get; private init; }
    /// <summary>The qcow2 header (without the snapshot table) when <see cref="Content"/> is qcow2 and it parsed.</summary>
    public Qcow2Image? Qcow2 { get; private init; }
    /// <summary>Why the qcow2 header did not parse, when the content is qcow2.</summary>
    public Exception? Qcow2Error { get; private init; }
    public long Length { get; private init; }
    public Exception? LengthError { get; private init; }

    /// <summary>
    /// Reads the facts of <paramref name="path"/>; never throws for what the file is or holds. With a
    /// <paramref name="cache"/>, a file whose identity and stamp are those of an earlier read is not read again.
    /// </summary>
    public static ImageHeaderFacts Read(string path, HeaderCache? cache = null)
    {
        var readStart = DateTime.UtcNow;
        // The stamp is taken before the content is read: a change during the read makes the next stamp differ. With a
        // cache, the one statx both answers the lookup and, on a miss, stands for the read.
        var file = HostFile.Describe(path);
        if (cache?.Lookup(path, file) is { } hit) return hit with { File = file };
        // statx follows symbolic links as these checks do: when it answered, its type settles them without asking again.
        if (file.Stamp is { } stamp)
        {
            if (stamp.IsDirectory) return new ImageHeaderFacts(path) { IsDirectory = true };
        }
        else
        {
            if (Directory.Exists(path)) return new ImageHeaderFacts(path) { IsDirectory = true };
            if (!System.IO.File.Exists(path)) return new ImageHeaderFacts(path) { Missing = true };
        }
        var facts = ReadContent(path, file);
        cache?.Store(facts, readStart);
        return facts;
    }

    private static ImageHeaderFacts ReadContent(string path, HostFileFacts file)
    {
        Stream stream;
        try
        {
            // Never blocks on a FIFO, never takes a lock a running QEMU would notice; a regular file (most of a
            // store) is read with the fewest system calls.
            stream = (file.Stamp?.IsRegularFile == true ? ImageFile.OpenRegularForRead(path) : null) ?? ImageFile.OpenForRead(path);
        }
        catch (KvmSnapshotException e)
        {
            return new ImageHeaderFacts(path) { File = file, OpenError = e };
        }
        using (stream)
        {
            string content;
            try
            {
                content = ImageFormatProbe.Probe(stream);
            }
            catch (IOException e)
            {
                return new ImageHeaderFacts(path) { File = file, ProbeError = e };
            }
            Qcow2Image? qcow2 = null;
            Exception? qcow2Error = null;
            if (content == ImageFormatProbe.Qcow2)
            {
                try
                {
                    stream.Position = 0;
                    qcow2 = Qcow2Reader.Read(stream, path, includeSnapshots: false);
                }
                catch (Exception e)
                {
                    qcow2Error = e;
                }
            }
            long length = 0;
            Exception? lengthError = null;
            try
            {
                length = ImageFile.LengthOf(stream);
            }
            catch (Exception e) when (e is IOException or NotSupportedException)
            {
                lengthError = e;
            }
            return new ImageHeaderFacts(path)
            {
                File = file, Content = content, Qcow2 = qcow2, Qcow2Error = qcow2Error, Length = length, LengthError = lengthError,
            };
        }
    }
}

/// <summary>
/// Header facts of the files a session has scanned, so that a second scan of an unchanged store reads no image
/// again: one statx per file tells whether it is the same file (device, inode) with the same type, size, modify and
/// change times. A change time cannot be set back by users, and any write moves it, so a changed file always
/// misses, with one exception git knows as "racy": a change within the timestamp granularity of the read. Facts of
/// a file changed less than <see cref="DefaultRacyWindow"/> before they were read are therefore never kept. Only scans
/// that report (Get-KvmSnapshotChain -Directory, Test-KvmSnapshotChain -Directory) use it; decisions before a
/// change (commit, pull, removal) read every header fresh.
/// </summary>
internal sealed class HeaderCache
{
    /// <summary>Files changed this recently before their read are read again next time (covers coarse timestamps).</summary>
    public static readonly TimeSpan DefaultRacyWindow = TimeSpan.FromSeconds(2);

    private long _hits;

    public HeaderCache(TimeSpan? racyWindow = null, int capacity = DefaultCapacity)
    {
        RacyWindow = racyWindow ?? DefaultRacyWindow;
        Capacity = capacity;
    }

    /// <summary>See <see cref="DefaultRacyWindow"/>; tests use zero to see reuse without waiting.</summary>
    public TimeSpan RacyWindow { get; }

    /// <summary>Lookups answered from the cache since it was made.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>More entries than this and the cache starts over (about 500 bytes each).</summary>
    public const int DefaultCapacity = 200_000;

    /// <summary>See <see cref="DefaultCapacity"/>; tests use a small one.</summary>
    public int Capacity { get; }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ImageHeaderFacts> _entries = new(StringComparer.Ordinal);

    /// <summary>
    /// About how many entries there are, kept beside the dictionary: its Count takes every one of its locks, and
    /// asking it on each store made a scan's two reader threads wait on each other for most of a first scan (perf:
    /// two thirds of a 920-image scan's samples were in those locks).
    /// </summary>
    private int _count;

    /// <summary>The one cache of this process (a PowerShell session).</summary>
    public static HeaderCache Session { get; } = new();

    public int Count => _entries.Count;

    public ImageHeaderFacts? Lookup(string path, HostFileFacts current)
    {
        if (current.Stamp is not { IsRegularFile: true } stamp || current.Identity.IsByPath) return null;
        if (!_entries.TryGetValue(path, out var known)) return null;
        if (known.File.Identity != current.Identity || known.File.Stamp != stamp) return null;
        Interlocked.Increment(ref _hits);
        return known;
    }

    public void Store(ImageHeaderFacts facts, DateTime readStartUtc)
    {
        if (facts.File.Stamp is not { IsRegularFile: true } stamp || facts.File.Identity.IsByPath
            || facts.OpenError is not null || facts.ProbeError is not null || facts.LengthError is not null)
        {
            if (_entries.TryRemove(facts.Path, out _)) Interlocked.Decrement(ref _count);
            return;
        }
        var newest = Math.Max(stamp.ModifyNs, stamp.ChangeNs);
        var settled = (readStartUtc - RacyWindow - DateTime.UnixEpoch).Ticks * 100;
        if (newest >= settled)
        {
            if (_entries.TryRemove(facts.Path, out _)) Interlocked.Decrement(ref _count);
            return;
        }
        if (Volatile.Read(ref _count) >= Capacity) Clear();
        if (_entries.TryAdd(facts.Path, facts)) Interlocked.Increment(ref _count);
        else _entries[facts.Path] = facts;
    }

    public void Clear()
    {
        _entries.Clear();
        Interlocked.Exchange(ref _count, 0);
    }
}
