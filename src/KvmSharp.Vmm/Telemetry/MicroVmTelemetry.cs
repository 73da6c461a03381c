// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace KvmSharp.Vmm.Telemetry;

/// <summary>
/// What the sandbox reports to .NET's metrics and tracing (System.Diagnostics.Metrics, System.Diagnostics.Activity), so
/// a server that runs guests sees them beside its other telemetry: <c>builder.Services.AddOpenTelemetry()
/// .WithMetrics(m =&gt; m.AddMeter(MicroVmTelemetry.Name)).WithTracing(t =&gt; t.AddSource(MicroVmTelemetry.Name))</c>,
/// or <c>dotnet-counters monitor --counters KvmSharp.Vmm</c>. Without a listener an instrument costs one check.
/// Tags have few values (outcomes, kinds), never an address or a guest's data.
/// </summary>
public static class MicroVmTelemetry
{
    /// <summary>The name of the <see cref="Meter"/> and of the <see cref="ActivitySource"/>: <c>KvmSharp.Vmm</c>.</summary>
    public const string Name = "KvmSharp.Vmm";

    /// <summary>Histogram, seconds: one guest call (<see cref="MicroVm.Call(string, ReadOnlySpan{ulong})"/>, Run,
    /// CallAddress) from the first KVM_RUN to the outcome, tagged <see cref="OutcomeTag"/>. Its count is the number of
    /// calls.</summary>
    public const string CallDuration = "kvmsharp.microvm.call.duration";

    /// <summary>Counter: KVM_RUN returns (exits) of guest calls, tagged <see cref="OutcomeTag"/>.</summary>
    public const string Exits = "kvmsharp.microvm.exits";

    /// <summary>Counter: host functions the guests called (<see cref="CallResult.HostCalls"/>).</summary>
    public const string HostCalls = "kvmsharp.microvm.host_calls";

    /// <summary>Histogram, seconds: creating a micro-VM, tagged <see cref="SourceTag"/> (<c>image</c> or
    /// <c>snapshot</c>).</summary>
    public const string CreateDuration = "kvmsharp.microvm.create.duration";

    /// <summary>Histogram, seconds: <see cref="MicroVm.Reset"/> and <see cref="MicroVm.Restore"/>, tagged
    /// <see cref="SourceTag"/> (<c>image</c> for a reset, <c>snapshot</c> for a restore).</summary>
    public const string ResetDuration = "kvmsharp.microvm.reset.duration";

    /// <summary>Up-down counter: micro-VMs created and not yet disposed (each holds a VM, a vCPU and its guest memory).</summary>
    public const string Active = "kvmsharp.microvm.active";

    /// <summary>Counter: <see cref="MicroVmPool.Rent()"/> calls, tagged <see cref="PoolSourceTag"/>: <c>idle</c> (a
    /// reset micro-VM was waiting) or <c>created</c> (none was: the renter paid for a creation).</summary>
    public const string PoolRents = "kvmsharp.microvm.pool.rents";

    /// <summary>Up-down counter: micro-VMs idle in pools, ready to rent.</summary>
    public const string PoolIdle = "kvmsharp.microvm.pool.idle";

    /// <summary>The tag holding a call's <see cref="GuestOutcome"/> as <see cref="GuestOutcomeNames.Name"/> gives it
    /// (<c>exit</c>, <c>timeout</c>, <c>exception</c> …).</summary>
    public const string OutcomeTag = "kvmsharp.microvm.outcome";

    /// <summary>The tag saying what a micro-VM was made or put back from: <c>image</c> or <c>snapshot</c>.</summary>
    public const string SourceTag = "kvmsharp.microvm.source";

    /// <summary>The tag saying where a rented micro-VM came from: <c>idle</c> or <c>created</c>.</summary>
    public const string PoolSourceTag = "kvmsharp.microvm.pool.source";

    /// <summary><see cref="SourceTag"/>'s value for a micro-VM made from, or reset to, its image.</summary>
    public const string SourceImage = "image";

    /// <summary><see cref="SourceTag"/>'s value for a micro-VM made from, or restored to, a snapshot.</summary>
    public const string SourceSnapshot = "snapshot";

    /// <summary><see cref="PoolSourceTag"/>'s value when a reset micro-VM was waiting.</summary>
    public const string PoolSourceIdle = "idle";

    /// <summary><see cref="PoolSourceTag"/>'s value when none was idle and the renter created one.</summary>
    public const string PoolSourceCreated = "created";

    /// <summary>Activity tag: the called function's name, or its address in hex for CallAddress.</summary>
    public const string FunctionTag = "kvmsharp.microvm.function";

    /// <summary>The name of the activity a guest call starts (one per call, when a listener samples it).</summary>
    public const string CallActivity = "MicroVm.Call";
}
