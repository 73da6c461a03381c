// SPDX-License-Identifier: MIT
// SandboxServer: untrusted guest code behind a request loop. A bounded pool of micro-VMs, one per request, a
// per-request deadline and client cancellation, every GuestOutcome turned into a response, host functions, and the
// sandbox's metrics read with a MeterListener. See README.md.
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using KvmSharp;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Telemetry;

namespace SandboxServer;

/// <summary>A simulated request: its body, when its client gives up (null: never), and the status it should get.</summary>
internal sealed record Request(string Name, byte[] Body, TimeSpan? ClientGivesUpAfter, int ExpectedStatus);

/// <summary>The server's answer to a request, and the guest outcome behind it (null when the guest never ran).</summary>
internal sealed record Response(int Status, string Text, GuestOutcome? Outcome);

internal static class Program
{
    // The sandbox's own limit on one guest call (MicroVmOptions.Timeout): a spinning guest ends as Timeout.
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromMilliseconds(200);

    // The server's deadline for a whole request, waiting for a micro-VM included; it ends a call as Cancelled.
    private static readonly TimeSpan RequestDeadline = TimeSpan.FromSeconds(5);

    // At most this many micro-VMs are out at once, so at most this many threads sit in a guest call.
    private const int MaxRented = 4;

    private const byte BrokenItem = 99;
    private static readonly Dictionary<byte, ulong> Prices = new() { [1] = 250, [2] = 1_200, [3] = 75 };

    public static async Task<int> Main(string[] args)
    {
        // Listen before the first micro-VM exists: instruments report only to listeners that were there.
        using var metrics = new SandboxMetrics();

        (Kvm kvm, EmulatedKernel? emulator) = OpenKvm(forceEmulated: args.Contains("--emulated"));
        using var emulatorLifetime = emulator;
        using var kvmLifetime = kvm;

        var options = new MicroVmOptions
        {
            Kvm = kvm,                 // one /dev/kvm for every micro-VM of the pool
            Memory = null,             // guest_memfd when this kernel can, else ordinary host memory
            Timeout = GuestTimeout,
            HostFunctions = QuoteGuest.Functions(Prices, BrokenItem),
        };
        Response[] responses;
        Request[] requests = Requests();
        // Warm: every micro-VM the bound allows is made before the first request. A renter that finds none idle creates
        // one on its own thread, which is synchronous work (milliseconds, more while the JIT is cold) that a thread-pool
        // thread then cannot spend on anything else, such as the timers behind the clients' CancelAfter.
        using (var pool = new MicroVmPool(QuoteGuest.Image(), options, size: MaxRented) { MaxRented = MaxRented, MaxIdle = MaxRented })
        {
            ReportMemory(pool);
            // The misbehaving requests first, as many as may run at once, so each gets a micro-VM at once and what it
            // meets is the guest's own doing (the order in which Task.Run starts requests is the thread pool's); then
            // the rest arrive together: at most MaxRented run at once, the others wait in RentAsync without a thread.
            Response[] first = await ServeTogether(pool, requests[..MaxRented]).ConfigureAwait(false);
            Response[] rest = await ServeTogether(pool, requests[MaxRented..]).ConfigureAwait(false);
            responses = [.. first, .. rest];
        }

        int failures = 0;
        for (int i = 0; i < requests.Length; i++)
        {
            Request request = requests[i];
            Response response = responses[i];
            bool ok = response.Status == request.ExpectedStatus;
            if (!ok) failures++;
            Console.WriteLine($"{request.Name,-26} -> {response.Status} {response.Text}{(ok ? "" : $"  (expected {request.ExpectedStatus})")}");
        }

        Console.WriteLine();
        metrics.Print(Console.Out);
        int calls = responses.Count(r => r.Outcome is not null);
        if (metrics.Calls != calls)
        {
            Console.WriteLine($"FAILED: telemetry counted {metrics.Calls} calls, the server made {calls}");
            failures++;
        }
        // Every request that got a micro-VM made one call; one whose client gave up while it waited got none (which of
        // the two the impatient client meets depends on how fast the others finish).
        if (metrics.Rents != calls)
        {
            Console.WriteLine($"FAILED: telemetry counted {metrics.Rents} rents for the {calls} requests that got a micro-VM");
            failures++;
        }
        Console.WriteLine(failures == 0 ? "OK: every request got the response it should." : $"FAILED: {failures} expectation(s) did not hold.");
        return failures == 0 ? 0 : 1;
    }

    private static Task<Response[]> ServeTogether(MicroVmPool pool, Request[] requests) =>
        Task.WhenAll(requests.Select(r => Task.Run(() => ServeAsync(pool, r))));

    /// <summary>
    /// A client that goes away after <paramref name="patience"/>: in a server the disconnect arrives from the network
    /// (the connection's reader sees the socket close), so it is simulated here by a thread of its own rather than by
    /// CancelAfter. A thread-pool timer can fire late while guests keep every core busy (measured here: 3 of 4 50 ms
    /// CancelAfter timers fired after 400 ms with 4 CPU-bound guests on 2 cores); the sandbox's own limit,
    /// MicroVmOptions.Timeout, is kept by a thread of its own and stays on time.
    /// </summary>
    private static void ClientDisconnects(CancellationTokenSource client, TimeSpan patience) =>
        new Thread(() =>
        {
            Thread.Sleep(patience);
            client.Cancel();
        }) { IsBackground = true, Name = "client disconnect" }.Start();

    /// <summary>The request handler: rent, call with the request's token, turn the outcome into a response, return.</summary>
    private static async Task<Response> ServeAsync(MicroVmPool pool, Request request)
    {
        // One token per request: the client going away, or the server's deadline, whichever comes first.
        using var clientAborted = new CancellationTokenSource();
        if (request.ClientGivesUpAfter is TimeSpan patience) ClientDisconnects(clientAborted, patience);
        using var requestAborted = CancellationTokenSource.CreateLinkedTokenSource(clientAborted.Token);
        requestAborted.CancelAfter(RequestDeadline);

        MicroVm vm;
        try
        {
            vm = await pool.RentAsync(requestAborted.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return new Response(499, "cancelled while waiting for a micro-VM", null);
        }
        try
        {
            // CallAsync runs the guest on the micro-VM's own vCPU thread, not on a thread-pool worker: the pool's timers
            // (CancelAfter: client disconnects, deadlines) keep their threads however many guests run. The token kicks
            // the guest out of KVM_RUN. (A blocking vm.Call would hold a pool thread for the whole guest run.)
            CallResult result = await vm.CallAsync("quote", request.Body, requestAborted.Token).ConfigureAwait(false);
            return ToResponse(result, clientAborted.IsCancellationRequested);
        }
        finally
        {
            // Always return, whatever happened: the reset wipes this request's memory and frees its place.
            pool.Return(vm);
        }
    }

    /// <summary>Every way a guest call can end, as an HTTP-like status.</summary>
    private static Response ToResponse(CallResult r, bool clientGaveUp)
    {
        switch (r.Outcome)
        {
            case GuestOutcome.Exit when r.IsSuccess:
                return new(200, $"total {r.Value}", r.Outcome);
            case GuestOutcome.Exit when r.Status == QuoteGuest.NoSuchItemStatus:
                return new(404, "no such item (guest exit status 4)", r.Outcome);
            case GuestOutcome.Exit:
                return new(422, $"guest exit status {r.Status}", r.Outcome);
            case GuestOutcome.Timeout:
            case GuestOutcome.MaxExits:
                return new(504, $"guest stopped: {r.Outcome} after {r.Elapsed.TotalMilliseconds:F0} ms", r.Outcome);
            case GuestOutcome.Cancelled:
                return clientGaveUp
                    ? new(499, "client closed the request; guest stopped", r.Outcome)
                    : new(503, "request deadline passed; guest stopped", r.Outcome);
            case GuestOutcome.HostFunctionFailed:
                // The host function's exception, with the guest's RIP: log it, answer as a failed dependency.
                return new(502, $"host function failed: {r.HostFault?.Exception.Message}", r.Outcome);
            case GuestOutcome.Exception:
                return new(500, $"guest crashed: {r.Exception}", r.Outcome);
            case GuestOutcome.UnknownPort:
                return new(500, $"guest misbehaved: port 0x{r.Port:X}", r.Outcome);
            case GuestOutcome.Shutdown:
            case GuestOutcome.Halt:
            case GuestOutcome.UnhandledMmio:
            case GuestOutcome.MemoryFault:
            case GuestOutcome.UnexpectedExit:
                return new(500, $"guest misbehaved: {r.Outcome} {r.Detail}", r.Outcome);
            case GuestOutcome.InternalError:
            case GuestOutcome.FailEntry:
            case GuestOutcome.RunFailed:
                // KVM itself could not run the guest: the host's problem, not the guest's.
                return new(500, $"sandbox failure: {r.Outcome} {r.Detail}", r.Outcome);
            default:
                return new(500, $"outcome this server does not know: {r.Outcome}", r.Outcome);
        }
    }

    private static Request[] Requests()
    {
        static byte[] Body(byte command, byte item, byte quantity) => [command, item, quantity];
        // The misbehaving ones come first (Main serves the first MaxRented of them before the rest).
        return
        [
            new("spin, client gives up", Body(QuoteGuest.Spin, 0, 0), TimeSpan.FromMilliseconds(50), 499),
            new("spin until the limit", Body(QuoteGuest.Spin, 0, 0), null, 504),
            new("divide by zero", Body(QuoteGuest.Divide, 0, 0), null, 500),
            new("write to port 0x1234", Body(QuoteGuest.BadPort, 0, 0), null, 500),
            new("item 99 (backend down)", Body(QuoteGuest.Quote, BrokenItem, 1), null, 502),
            new("item 7 (not sold)", Body(QuoteGuest.Quote, 7, 1), null, 404),
            .. Enumerable.Range(0, 12).Select(i =>
            {
                byte item = (byte)(1 + (i % 3));
                byte quantity = (byte)(1 + i);
                return new Request($"quote item {item} x {quantity}", Body(QuoteGuest.Quote, item, quantity), null, 200);
            }),
        ];
    }

    private static void ReportMemory(MicroVmPool pool)
    {
        MicroVm vm = pool.Rent();
        try
        {
            Console.WriteLine(vm.Memory.Backing == GuestMemoryBacking.GuestMemfd
                ? "memory: guest_memfd"
                : $"memory: host memory, because {vm.GuestMemfdUnavailableReason}");
        }
        finally
        {
            pool.Return(vm);
        }
    }

    /// <summary>
    /// /dev/kvm when it opens (any KVM runs the sandbox); otherwise, or with --emulated, the emulated kernel configured
    /// like this machine with guest_memfd.
    /// </summary>
    private static (Kvm Kvm, EmulatedKernel? Emulator) OpenKvm(bool forceEmulated)
    {
        string why = "--emulated was given";
        if (!forceEmulated)
        {
            try
            {
                Kvm kvm = Kvm.Open();
                Console.WriteLine("kernel: linux (/dev/kvm)");
                return (kvm, null);
            }
            catch (KvmException e)
            {
                why = $"/dev/kvm did not open ({e.ErrnoName})";
            }
        }
        var emulator = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        Console.WriteLine($"kernel: emulated, because {why}");
        return (Kvm.Open(emulator), emulator);
    }
}

/// <summary>
/// Reads the sandbox's instruments (meter <see cref="MicroVmTelemetry.Name"/>) in process, as OpenTelemetry or
/// dotnet-counters would: calls by outcome, KVM exits, host calls, pool rents by where the micro-VM came from.
/// </summary>
internal sealed class SandboxMetrics : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _callsByOutcome = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _rentsBySource = new(StringComparer.Ordinal);
    private long _exits;
    private long _hostCalls;

    public SandboxMetrics()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MicroVmTelemetry.Name) listener.EnableMeasurementEvents(instrument);
        };
        // Call durations are histograms of seconds; each measurement is one call, tagged with its outcome.
        _listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) =>
        {
            if (instrument.Name == MicroVmTelemetry.CallDuration) _callsByOutcome.AddOrUpdate(Tag(tags, MicroVmTelemetry.OutcomeTag), 1, (_, n) => n + 1);
        });
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            switch (instrument.Name)
            {
                case MicroVmTelemetry.Exits: Interlocked.Add(ref _exits, value); break;
                case MicroVmTelemetry.HostCalls: Interlocked.Add(ref _hostCalls, value); break;
                case MicroVmTelemetry.PoolRents: _rentsBySource.AddOrUpdate(Tag(tags, MicroVmTelemetry.PoolSourceTag), value, (_, n) => n + value); break;
            }
        });
        _listener.Start();
    }

    public long Calls => _callsByOutcome.Values.Sum();

    // The rent ReportMemory makes is one more than the requests' own.
    public long Rents => _rentsBySource.Values.Sum() - 1;

    public void Print(TextWriter output)
    {
        output.WriteLine($"telemetry ({MicroVmTelemetry.Name}):");
        output.WriteLine($"  calls by outcome: {Join(_callsByOutcome)}");
        output.WriteLine($"  exits: {Interlocked.Read(ref _exits)}, host calls: {Interlocked.Read(ref _hostCalls)}");
        output.WriteLine($"  pool rents: {Join(_rentsBySource)} (one by the memory report)");
    }

    public void Dispose() => _listener.Dispose();

    private static string Join(ConcurrentDictionary<string, long> counts) =>
        string.Join(", ", counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"));

    private static string Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string name)
    {
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            if (tag.Key == name) return tag.Value?.ToString() ?? "";
        }
        return "";
    }
}
