using System;
using System.Globalization;
using System.Management.Automation;
using System.Threading;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;

namespace KvmSnapshot.Cmdlets;

/// <summary>
/// The connection timeout: how long opening a libvirt connection may take before the host is an error
/// (ConnectionFailed naming the URI and the limit). A preference variable rather than a parameter, as
/// $ErrorActionPreference or $ProgressPreference: it is a property of the session and its hosts, set once, and it
/// applies to every cmdlet, also where a connection is opened without -ConnectionUri (the image-usage checks).
/// </summary>
public abstract partial class KvmCmdlet
{
    /// <summary>$KvmSnapshotConnectTimeout: seconds (a number) or a TimeSpan; 0 means no limit; unset means 30 s.</summary>
    internal const string ConnectTimeoutVariable = "KvmSnapshotConnectTimeout";

    private bool _connectTimeoutRead;
    private TimeSpan? _connectTimeout;

    /// <summary>The session's connection timeout (null: the default), read once on the pipeline thread.</summary>
    private TimeSpan? ConnectTimeout()
    {
        if (_connectTimeoutRead) return _connectTimeout;
        try
        {
            _connectTimeout = ParseConnectTimeout(SessionState.PSVariable.GetValue(ConnectTimeoutVariable));
        }
        catch (KvmSnapshotException e)
        {
            ThrowTerminatingError(e.ToErrorRecord());
        }
        _connectTimeoutRead = true;
        return _connectTimeout;
    }

    /// <summary>Runs <paramref name="work"/> with the session's connection timeout (pipeline thread: read there).</summary>
    private T WithConnectTimeout<T>(Func<T> work) => LibvirtConnection.WithOpenTimeout(ConnectTimeout(), work);

    /// <summary>The preference's value as a timeout: null when unset, <see cref="Timeout.InfiniteTimeSpan"/> for 0.</summary>
    internal static TimeSpan? ParseConnectTimeout(object? value)
    {
        if (value is PSObject wrapped) value = wrapped.BaseObject;
        if (value is null) return null;
        TimeSpan? timeout = value switch
        {
            TimeSpan t => t,
            string or int or long or double or decimal or float or short or byte
                when LanguagePrimitives.TryConvertTo<double>(value, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds)
                    && Math.Abs(seconds) < TimeSpan.MaxValue.TotalSeconds => TimeSpan.FromSeconds(seconds),
            _ => null,
        };
        if (timeout is not { } limit || limit < TimeSpan.Zero)
        {
            throw new KvmSnapshotException(ErrorIds.ConnectTimeoutInvalid, KvmErrorKind.InvalidArgument, value,
                $"${ConnectTimeoutVariable} is '{value}': it must be a number of seconds or a TimeSpan, not negative (0: no limit). Nothing was done.")
            {
                RecommendedAction = $"${ConnectTimeoutVariable} = 30, or remove it (Remove-Variable {ConnectTimeoutVariable}) for the default of 30 s.",
            };
        }
        // 0 means no limit; beyond what a wait can take (24.8 days) is no limit either.
        return limit == TimeSpan.Zero || limit.TotalMilliseconds > int.MaxValue ? Timeout.InfiniteTimeSpan : limit;
    }
}
