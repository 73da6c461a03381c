// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Diagnostics.Metrics;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Telemetry;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The sandbox's metrics and activities (<see cref="MicroVmTelemetry"/>), on both kernels. Tests run in parallel and a
/// listener hears every micro-VM of the process, so each test keeps only what its own thread recorded: the sandbox
/// records on the thread that creates, calls, resets and rents.
/// </summary>
public sealed class TelemetryTests
{
    private sealed record Measurement(string Instrument, double Value, Dictionary<string, object?> Tags);

    /// <summary>Collects the measurements of <see cref="MicroVmTelemetry.Name"/> that this thread records.</summary>
    private sealed class ThreadMeasurements : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly int _thread = Environment.CurrentManagedThreadId;

        public List<Measurement> All { get; } = [];

        public ThreadMeasurements()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == MicroVmTelemetry.Name) listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
            _listener.Start();
        }

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (Environment.CurrentManagedThreadId != _thread) return;
            var copy = new Dictionary<string, object?>();
            foreach (var tag in tags) copy[tag.Key] = tag.Value;
            All.Add(new Measurement(instrument.Name, value, copy));
        }

        public List<Measurement> Of(string instrument) => All.Where(m => m.Instrument == instrument).ToList();

        public double Sum(string instrument) => Of(instrument).Sum(m => m.Value);

        public void Dispose() => _listener.Dispose();
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void A_call_records_its_duration_exits_and_outcome_and_the_vm_counts_as_active_until_disposed(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var measured = new ThreadMeasurements();
        CallResult ok, bad;
        using (var vm = MicroVm.Create(Misbehaving.LoopsImage(), k.Options(GuestMemoryBacking.HostMemory)))
        {
            Assert.Equal(1, measured.Sum(MicroVmTelemetry.Active));
            var created = Assert.Single(measured.Of(MicroVmTelemetry.CreateDuration));
            Assert.Equal("image", created.Tags[MicroVmTelemetry.SourceTag]);
            Assert.InRange(created.Value, 1e-6, 60);

            ok = vm.Call("count", 50);
            Assert.True(ok.IsSuccess, ok.ToString());
            using var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            bad = vm.Call("spin", cancelled.Token);
            Assert.Equal(GuestOutcome.Cancelled, bad.Outcome);
        }
        Assert.Equal(0, measured.Sum(MicroVmTelemetry.Active));

        var calls = measured.Of(MicroVmTelemetry.CallDuration);
        Assert.Equal(["exit", "cancelled"], calls.Select(c => c.Tags[MicroVmTelemetry.OutcomeTag]));
        Assert.Equal(ok.Elapsed.TotalSeconds, calls[0].Value, 9);
        Assert.Equal(bad.Elapsed.TotalSeconds, calls[1].Value, 9);
        var exits = measured.Of(MicroVmTelemetry.Exits);
        Assert.Equal([(double)ok.Exits, bad.Exits], exits.Select(e => e.Value));
        Assert.Equal(["exit", "cancelled"], exits.Select(e => e.Tags[MicroVmTelemetry.OutcomeTag]));
        Assert.Empty(measured.Of(MicroVmTelemetry.HostCalls)); // this guest calls none
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Host_calls_resets_and_snapshot_restores_are_counted(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var measured = new ThreadMeasurements();
        var options = k.Options(GuestMemoryBacking.HostMemory) with { HostFunctions = HostCalling.Functions(TextWriter.Null) };
        using var vm = MicroVm.Create(HostCalling.Image(), options);
        var r = vm.Run();
        Assert.True(r.IsSuccess, r.ToString());
        Assert.True(r.HostCalls > 0);
        Assert.Equal(r.HostCalls, measured.Sum(MicroVmTelemetry.HostCalls));

        var snapshot = vm.Snapshot();
        vm.Reset();
        vm.Restore(snapshot);
        Assert.Equal(["image", "snapshot"], measured.Of(MicroVmTelemetry.ResetDuration).Select(m => m.Tags[MicroVmTelemetry.SourceTag]));
        using var copy = MicroVm.Create(snapshot, options);
        Assert.Equal(["image", "snapshot"], measured.Of(MicroVmTelemetry.CreateDuration).Select(m => m.Tags[MicroVmTelemetry.SourceTag]));
        Assert.Equal(2, measured.Sum(MicroVmTelemetry.Active));
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Pool_rents_say_where_the_vm_came_from_and_idle_follows_the_pool(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var measured = new ThreadMeasurements();
        using (var pool = new MicroVmPool(Sum.Image(), k.Options(GuestMemoryBacking.HostMemory), size: 1))
        {
            Assert.Equal(1, measured.Sum(MicroVmTelemetry.PoolIdle));
            MicroVm first = pool.Rent();   // the idle one
            MicroVm second = pool.Rent();  // none idle: created
            Assert.Equal(0, measured.Sum(MicroVmTelemetry.PoolIdle));
            pool.Return(first);
            pool.Return(second);
            Assert.Equal(2, measured.Sum(MicroVmTelemetry.PoolIdle));
            var rents = measured.Of(MicroVmTelemetry.PoolRents);
            Assert.Equal(["idle", "created"], rents.Select(m => m.Tags[MicroVmTelemetry.PoolSourceTag]));
            Assert.All(rents, m => Assert.Equal(1, m.Value));
            Assert.Equal(2, measured.Of(MicroVmTelemetry.ResetDuration).Count);
        }
        Assert.Equal(0, measured.Sum(MicroVmTelemetry.PoolIdle));
        Assert.Equal(0, measured.Sum(MicroVmTelemetry.Active));
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Each_call_is_an_activity_under_the_callers_with_function_outcome_and_exits(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var testSource = new ActivitySource("KvmSharp.Vmm.Tests." + nameof(TelemetryTests));
        var stopped = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == MicroVmTelemetry.Name || s.Name == testSource.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (stopped) stopped.Add(a); },
        };
        ActivitySource.AddActivityListener(listener);

        using var vm = MicroVm.Create(Misbehaving.LoopsImage(), k.Options(GuestMemoryBacking.HostMemory));
        CallResult ok, bad;
        using (var parent = testSource.StartActivity("test")!)
        {
            ok = vm.Call("add", 2, 3);
            bad = vm.CallAddress(vm.Image.Resolve("spin"), new CancellationToken(canceled: true));
            Assert.Same(parent, Activity.Current); // the calls' activities ended and gave the caller's back
            Activity[] mine;
            lock (stopped) mine = stopped.Where(a => a.Parent == parent).ToArray();
            Assert.Equal(2, mine.Length);
            Assert.All(mine, a => Assert.Equal(MicroVmTelemetry.CallActivity, a.OperationName));

            Assert.Equal("add", mine[0].GetTagItem(MicroVmTelemetry.FunctionTag));
            Assert.Equal("exit", mine[0].GetTagItem(MicroVmTelemetry.OutcomeTag));
            Assert.Equal(ok.Exits, mine[0].GetTagItem(MicroVmTelemetry.Exits));
            Assert.Equal(ActivityStatusCode.Unset, mine[0].Status);

            Assert.Equal($"0x{vm.Image.Resolve("spin"):X}", mine[1].GetTagItem(MicroVmTelemetry.FunctionTag));
            Assert.Equal("cancelled", mine[1].GetTagItem(MicroVmTelemetry.OutcomeTag));
            Assert.Equal(ActivityStatusCode.Error, mine[1].Status);
            Assert.Equal(bad.Detail, mine[1].StatusDescription);
        }
    }

    [Fact]
    public void Outcome_names_are_snake_case_and_distinct()
    {
        Assert.Equal("unknown_port", GuestOutcome.UnknownPort.Name());
        Assert.Equal("host_function_failed", GuestOutcome.HostFunctionFailed.Name());
        Assert.Equal("exit", GuestOutcome.Exit.Name());
        Assert.Equal("99", ((GuestOutcome)99).Name());
        var names = Enum.GetValues<GuestOutcome>().Select(o => o.Name()).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
    }
}
