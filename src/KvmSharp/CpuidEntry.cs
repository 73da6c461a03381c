// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// One x86 CPUID leaf as KVM exchanges it (<c>struct kvm_cpuid_entry2</c>): the leaf (<see cref="Function"/>, EAX on
/// input), the subleaf (<see cref="Index"/>, ECX on input; compared only when <see cref="Flags"/> has
/// <see cref="KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX"/>) and the four output registers.
/// </summary>
/// <param name="Function">The leaf: EAX on input to CPUID.</param>
/// <param name="Index">The subleaf: ECX on input to CPUID.</param>
/// <param name="Flags">KVM_CPUID_FLAG_* bits.</param>
/// <param name="Eax">EAX on output.</param>
/// <param name="Ebx">EBX on output.</param>
/// <param name="Ecx">ECX on output.</param>
/// <param name="Edx">EDX on output.</param>
public readonly record struct CpuidEntry(uint Function, uint Index, uint Flags, uint Eax, uint Ebx, uint Ecx, uint Edx)
{
    /// <summary>A leaf whose index does not matter (flags 0).</summary>
    public static CpuidEntry Leaf(uint function, uint eax, uint ebx, uint ecx, uint edx) =>
        new(function, 0, 0, eax, ebx, ecx, edx);

    /// <summary>A subleaf: <see cref="KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX"/> set, so CPUID matches the index too.</summary>
    public static CpuidEntry Subleaf(uint function, uint index, uint eax, uint ebx, uint ecx, uint edx) =>
        new(function, index, KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX, eax, ebx, ecx, edx);

    /// <summary>Whether CPUID compares <see cref="Index"/> (KVM_CPUID_FLAG_SIGNIFCANT_INDEX).</summary>
    public bool HasSignificantIndex => (Flags & KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0;

    /// <summary>The uAPI struct (padding zero).</summary>
    public kvm_cpuid_entry2 ToNative() => new()
    {
        function = Function, index = Index, flags = Flags, eax = Eax, ebx = Ebx, ecx = Ecx, edx = Edx,
    };

    /// <summary>From the uAPI struct (its padding is dropped).</summary>
    public static CpuidEntry FromNative(in kvm_cpuid_entry2 e) => new(e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx);

    /// <inheritdoc/>
    public override string ToString() =>
        $"0x{Function:X8}.{Index} flags={Flags} eax=0x{Eax:X8} ebx=0x{Ebx:X8} ecx=0x{Ecx:X8} edx=0x{Edx:X8}";

    // ---- the kvm_cpuid2 buffer: header + flexible array, as the typed API passes it to the kernel ----

    internal static readonly int HeaderSize = Marshal.SizeOf<kvm_cpuid2>();
    internal static readonly int EntrySize = Marshal.SizeOf<kvm_cpuid_entry2>();

    /// <summary>A zeroed kvm_cpuid2 buffer with room for <paramref name="capacity"/> entries and nent = capacity.</summary>
    internal static byte[] NewBuffer(int capacity)
    {
        byte[] buffer = new byte[HeaderSize + (capacity * EntrySize)];
        var header = new kvm_cpuid2 { nent = (uint)capacity };
        MemoryMarshal.Write(buffer, in header);
        return buffer;
    }

    /// <summary>A kvm_cpuid2 buffer holding <paramref name="entries"/>.</summary>
    internal static byte[] ToBuffer(IReadOnlyList<CpuidEntry> entries)
    {
        byte[] buffer = NewBuffer(entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            var native = entries[i].ToNative();
            MemoryMarshal.Write(buffer.AsSpan(HeaderSize + (i * EntrySize)), in native);
        }
        return buffer;
    }

    /// <summary>The entries of a kvm_cpuid2 buffer the kernel filled (its nent, bounded by the buffer).</summary>
    internal static CpuidEntry[] FromBuffer(ReadOnlySpan<byte> buffer)
    {
        uint nent = MemoryMarshal.Read<kvm_cpuid2>(buffer).nent;
        int capacity = (buffer.Length - HeaderSize) / EntrySize;
        int n = (int)Math.Min(nent, (uint)capacity);
        var result = new CpuidEntry[n];
        for (int i = 0; i < n; i++)
            result[i] = FromNative(MemoryMarshal.Read<kvm_cpuid_entry2>(buffer[(HeaderSize + (i * EntrySize))..]));
        return result;
    }
}
