// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>The README's server sample (a bounded pool, RentAsync, a call that takes the request's token), as written
/// there, on both kernels: many concurrent requests, a cancelled one, and nothing of one request in the next.</summary>
public sealed class ReadmeServerSampleTests
{
    /// <summary>The README's handler, word for word but for the pool it is given.</summary>
    private static async Task<ulong?> HandleAsync(MicroVmPool pool, byte[] input, CancellationToken requestAborted)
    {
        MicroVm vm = await pool.RentAsync(requestAborted);
        try
        {
            // On the micro-VM's own vCPU thread, not a thread-pool worker. Timeout, Cancelled, Exception …: outcomes, not throws
            CallResult r = await vm.CallAsync("sum", input, requestAborted);
            return r.IsSuccess ? r.Value : null;
        }
        finally
        {
            pool.Return(vm); // reset: nothing of this request reaches the next
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public async Task The_readme_server_sample_serves_concurrent_requests(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        GuestImage image = Sum.Image(); // the README loads its ELF: GuestImage.FromFile("sum.elf")
        MicroVmOptions options = k.Options(GuestMemoryBacking.HostMemory) with { Timeout = TimeSpan.FromSeconds(20) };
        using var pool = new MicroVmPool(image, options, size: 2) { MaxRented = 4, MaxIdle = 4 };

        var requests = Enumerable.Range(1, 12).Select(n => HandleAsync(pool, Enumerable.Range(1, n).Select(i => (byte)i).ToArray(), CancellationToken.None));
        ulong?[] sums = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(Enumerable.Range(1, 12).Select(n => (ulong?)(ulong)(n * (n + 1) / 2)), sums);
        // An aborted request rents nothing and runs nothing.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => HandleAsync(pool, [1, 2, 3], new CancellationToken(canceled: true)));
        Assert.Equal(0, pool.Rented);
        Assert.InRange(pool.Idle, 2, 4);
    }
}
