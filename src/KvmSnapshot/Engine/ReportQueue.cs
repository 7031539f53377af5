using System.Collections.Generic;
using System.Threading;

namespace KvmSnapshot.Engine;

/// <summary>
/// The queue between engine threads, which post reports (verbose lines, progress, questions), and the pipeline thread,
/// which writes them. It does what BlockingCollection did here, without its cost on every call: BlockingCollection
/// ends a consuming enumeration by cancelling an internal token, so each call threw and caught two
/// OperationCanceledExceptions, and the first call of a session paid for the first exceptions of the process. Here the
/// end is a flag under the lock; only a cancelled <c>wake</c> (Ctrl+C, an abandoned work) throws.
/// </summary>
internal sealed class ReportQueue<T>
{
    private readonly Queue<T> _items = new();
    private bool _completed;

    /// <summary>Queues <paramref name="item"/>; false (dropped) once <see cref="Complete"/> was called.</summary>
    public bool TryAdd(T item)
    {
        lock (_items)
        {
            if (_completed) return false;
            _items.Enqueue(item);
            if (_items.Count == 1) Monitor.PulseAll(_items);
            return true;
        }
    }

    /// <summary>No more items are taken; the consumer ends once it took those already queued.</summary>
    public void Complete()
    {
        lock (_items)
        {
            _completed = true;
            Monitor.PulseAll(_items);
        }
    }

    /// <summary>Takes a queued item without waiting.</summary>
    public bool TryTake(out T item)
    {
        lock (_items)
        {
            return _items.TryDequeue(out item!);
        }
    }

    /// <summary>
    /// The items in order, waiting for each, until <see cref="Complete"/> was called and the queue is empty; throws
    /// OperationCanceledException when <paramref name="wake"/> is cancelled first.
    /// </summary>
    public IEnumerable<T> Consume(CancellationToken wake)
    {
        using var registration = wake.CanBeCanceled ? wake.UnsafeRegister(static state => ((ReportQueue<T>)state!).Wake(), this) : default;
        while (true)
        {
            T item;
            lock (_items)
            {
                while (_items.Count == 0 && !_completed && !wake.IsCancellationRequested) Monitor.Wait(_items);
                wake.ThrowIfCancellationRequested();
                if (_items.Count == 0) yield break;
                item = _items.Dequeue();
            }
            yield return item;
        }
    }

    private void Wake()
    {
        lock (_items) Monitor.PulseAll(_items);
    }
}
