// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Names = KvmSharp.Vmm.Telemetry.MicroVmTelemetry;

namespace KvmSharp.Vmm.Telemetry;

/// <summary>The sandbox's meter, instruments and activity source (names: <see cref="MicroVmTelemetry"/>).</summary>
internal static class Instruments
{
    private static readonly string? s_version = typeof(Instruments).Assembly.GetName().Version?.ToString();
    private static readonly Meter s_meter = new(Names.Name, s_version);

    public static readonly ActivitySource Source = new(Names.Name, s_version);

    private static readonly Histogram<double> s_callDuration = s_meter.CreateHistogram<double>(Names.CallDuration, "s", "Duration of guest calls");
    private static readonly Counter<long> s_exits = s_meter.CreateCounter<long>(Names.Exits, "{exit}", "KVM_RUN returns of guest calls");
    private static readonly Counter<long> s_hostCalls = s_meter.CreateCounter<long>(Names.HostCalls, "{call}", "Host functions called by guests");
    private static readonly Histogram<double> s_createDuration = s_meter.CreateHistogram<double>(Names.CreateDuration, "s", "Duration of micro-VM creation");
    private static readonly Histogram<double> s_resetDuration = s_meter.CreateHistogram<double>(Names.ResetDuration, "s", "Duration of micro-VM resets and restores");
    private static readonly UpDownCounter<long> s_active = s_meter.CreateUpDownCounter<long>(Names.Active, "{micro_vm}", "Micro-VMs not yet disposed");
    private static readonly Counter<long> s_poolRents = s_meter.CreateCounter<long>(Names.PoolRents, "{rent}", "Micro-VMs rented from pools");
    private static readonly UpDownCounter<long> s_poolIdle = s_meter.CreateUpDownCounter<long>(Names.PoolIdle, "{micro_vm}", "Micro-VMs idle in pools");

    private static KeyValuePair<string, object?> SourceOf(bool snapshot) => new(Names.SourceTag, snapshot ? Names.SourceSnapshot : Names.SourceImage);

    public static void CallEnded(CallResult result)
    {
        var outcome = new KeyValuePair<string, object?>(Names.OutcomeTag, result.Outcome.Name());
        if (s_callDuration.Enabled) s_callDuration.Record(result.Elapsed.TotalSeconds, outcome);
        if (s_exits.Enabled) s_exits.Add(result.Exits, outcome);
        if (s_hostCalls.Enabled && result.HostCalls != 0) s_hostCalls.Add(result.HostCalls);
    }

    public static void Created(long startTimestamp, bool fromSnapshot)
    {
        if (s_createDuration.Enabled) s_createDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, SourceOf(fromSnapshot));
    }

    public static void ResetDone(long startTimestamp, bool toSnapshot)
    {
        if (s_resetDuration.Enabled) s_resetDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, SourceOf(toSnapshot));
    }

    public static void ActiveChanged(int delta) => s_active.Add(delta);

    public static void Rented(bool fromIdle) => s_poolRents.Add(1, new KeyValuePair<string, object?>(Names.PoolSourceTag, fromIdle ? Names.PoolSourceIdle : Names.PoolSourceCreated));

    public static void IdleChanged(int delta) => s_poolIdle.Add(delta);

    /// <summary>Starts a call's activity, or null when no listener wants it (then nothing else is done).</summary>
    public static Activity? StartCall(string? function, ulong entry)
    {
        if (!Source.HasListeners()) return null;
        Activity? activity = Source.StartActivity(Names.CallActivity, ActivityKind.Internal);
        activity?.SetTag(Names.FunctionTag, function ?? $"0x{entry:X}");
        return activity;
    }

    /// <summary>Ends a call's activity whose run loop threw (a kernel call failed): Activity.Current must not outlive it.</summary>
    public static void FailCall(Activity? activity, Exception exception)
    {
        if (activity is null) return;
        activity.SetStatus(ActivityStatusCode.Error, exception.Message);
        activity.Dispose();
    }

    public static void StopCall(Activity? activity, CallResult result)
    {
        if (activity is null) return;
        activity.SetTag(Names.OutcomeTag, result.Outcome.Name());
        activity.SetTag(Names.Exits, result.Exits);
        if (result.HostCalls != 0) activity.SetTag(Names.HostCalls, result.HostCalls);
        if (!result.IsSuccess) activity.SetStatus(ActivityStatusCode.Error, result.Detail.Length > 0 ? result.Detail : result.Outcome.Name());
        activity.Dispose();
    }
}
