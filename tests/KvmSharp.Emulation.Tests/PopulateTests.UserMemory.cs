// SPDX-License-Identifier: MIT
// The process memory the populate commands read: user buffers and a read-only region.
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

public sealed partial class PopulateTests
{
    /// <summary>Page-aligned native memory standing in for a userspace buffer (freed on dispose).</summary>
    private sealed class UserBuffer : IDisposable
    {
        private readonly nint _raw;

        public UserBuffer(ulong size)
        {
            Size = size;
            _raw = Marshal.AllocHGlobal((nint)(size + Ps));
            Address = ((ulong)_raw + Ps - 1) & ~(Ps - 1);
            WriteBytes(0, new byte[size]);
        }

        public ulong Address { get; }

        public ulong Size { get; }

        public void Fill(ulong offset, ulong length, byte value) => WriteBytes(offset, Enumerable.Repeat(value, (int)length).ToArray());

        public void WriteBytes(ulong offset, byte[] bytes) => Marshal.Copy(bytes, 0, (nint)(Address + offset), bytes.Length);

        public void Write<T>(ulong offset, T value) where T : unmanaged =>
            WriteBytes(offset, Raw.Bytes(ref value).ToArray());

        public T Read<T>(ulong offset) where T : unmanaged
        {
            var bytes = new byte[Marshal.SizeOf<T>()];
            Marshal.Copy((nint)(Address + offset), bytes, 0, bytes.Length);
            return MemoryMarshal.Read<T>(bytes);
        }

        public void Dispose() => Marshal.FreeHGlobal(_raw);
    }

    /// <summary>A struct in a read-only anonymous page of this process (mmap + mprotect via the emulator's host mm).</summary>
    private sealed class ReadOnlyRegion : IDisposable
    {
        private readonly nint _page;

        public ReadOnlyRegion(kvm_tdx_init_mem_region value)
        {
            // A private read-only mapping of a file holding the struct: readable, not writable.
            string path = Path.Combine(Path.GetTempPath(), $"kvmsharp-populate-{Environment.ProcessId}-{Guid.NewGuid():N}");
            var bytes = new byte[Ps];
            Raw.Bytes(ref value).CopyTo(bytes);
            File.WriteAllBytes(path, bytes);
            try
            {
                Assert.True(LinuxKernel.Instance.Open(path, O_RDONLY, out var fd) >= 0);
                using (fd!)
                    Assert.Equal(0, LinuxKernel.Instance.Mmap(0, Ps, PROT_READ, MAP_PRIVATE, fd, 0, out _page));
            }
            finally
            {
                File.Delete(path);
            }
        }

        public ulong Address => (ulong)_page;

        public void Dispose() => Assert.Equal(0, LinuxKernel.Instance.Munmap(_page, Ps));
    }
}
