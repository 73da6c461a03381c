// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Sizes and offsets of the KVM_MEMORY_ENCRYPT_OP structs against arch/x86/include/uapi/asm/kvm.h, and the request
/// number against include/uapi/linux/kvm.h.
/// </summary>
public sealed class MemoryEncryptAbiLayoutTests
{
    public static TheoryData<Type, int> Sizes => new()
    {
        { typeof(kvm_tdx_cmd), 24 },
        { typeof(kvm_tdx_init_mem_region), 24 },
        { typeof(kvm_sev_cmd), 24 },
        { typeof(kvm_sev_snp_launch_update), 64 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Struct_sizes_match_the_uapi(Type type, int size)
    {
        Assert.Equal(size, (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!);
    }

    public static TheoryData<Type, string, int> Offsets => new()
    {
        { typeof(kvm_tdx_cmd), nameof(kvm_tdx_cmd.id), 0 },
        { typeof(kvm_tdx_cmd), nameof(kvm_tdx_cmd.flags), 4 },
        { typeof(kvm_tdx_cmd), nameof(kvm_tdx_cmd.data), 8 },
        { typeof(kvm_tdx_cmd), nameof(kvm_tdx_cmd.hw_error), 16 },
        { typeof(kvm_tdx_init_mem_region), nameof(kvm_tdx_init_mem_region.source_addr), 0 },
        { typeof(kvm_tdx_init_mem_region), nameof(kvm_tdx_init_mem_region.gpa), 8 },
        { typeof(kvm_tdx_init_mem_region), nameof(kvm_tdx_init_mem_region.nr_pages), 16 },
        { typeof(kvm_sev_cmd), nameof(kvm_sev_cmd.id), 0 },
        { typeof(kvm_sev_cmd), nameof(kvm_sev_cmd.pad0), 4 },
        { typeof(kvm_sev_cmd), nameof(kvm_sev_cmd.data), 8 },
        { typeof(kvm_sev_cmd), nameof(kvm_sev_cmd.error), 16 },
        { typeof(kvm_sev_cmd), nameof(kvm_sev_cmd.sev_fd), 20 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.gfn_start), 0 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.uaddr), 8 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.len), 16 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.type), 24 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.pad0), 25 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.flags), 26 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.pad1), 28 },
        { typeof(kvm_sev_snp_launch_update), nameof(kvm_sev_snp_launch_update.pad2), 32 },
    };

    [Theory]
    [MemberData(nameof(Offsets))]
    public void Field_offsets_match_the_uapi(Type type, string field, int offset)
    {
        Assert.Equal(offset, (int)Marshal.OffsetOf(type, field));
    }

    [Fact]
    public void Snp_launch_update_fields_land_where_the_kernel_reads_them()
    {
        var p = new kvm_sev_snp_launch_update { gfn_start = 1, uaddr = 2, len = 3, type = 4, pad0 = 5, flags = 0x0706, pad1 = 0x0b0a0908 };
        p.pad2[3] = 0x0c;
        var bytes = MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref p, 1));
        Assert.Equal(1, bytes[0]);
        Assert.Equal(2, bytes[8]);
        Assert.Equal(3, bytes[16]);
        Assert.Equal(new byte[] { 4, 5, 6, 7, 8, 9, 10, 11 }, bytes[24..32].ToArray());
        Assert.Equal(0x0c, bytes[56]);
    }

    [Fact]
    public void Request_and_command_numbers_match_the_uapi()
    {
        // _IOWR(KVMIO, 0xba, unsigned long): dir 3, size 8.
        Assert.Equal(0xC008AEBAu, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP);
        Assert.Equal(3u, IoctlEncoding._IOC_DIR(KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP));
        Assert.Equal(8u, IoctlEncoding._IOC_SIZE(KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP));
        Assert.Equal(3u, KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION);
        Assert.Equal(1u, KvmMemoryEncrypt.KVM_TDX_MEASURE_MEMORY_REGION);
        Assert.Equal(100u, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START);
        Assert.Equal(101u, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE);
        Assert.Equal(new byte[] { 1, 3, 4, 5, 6 }, new[]
        {
            KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_NORMAL, KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_ZERO,
            KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_UNMEASURED, KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS,
            KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_CPUID,
        });
    }
}
