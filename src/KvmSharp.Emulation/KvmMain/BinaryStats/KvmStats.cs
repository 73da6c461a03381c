// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// <c>kvm-&gt;stat</c> or <c>vcpu-&gt;stat</c> with its <c>stats_id</c>: the values behind a stats file and the
/// descriptor table that names them. The id is fixed at creation as kvm_main.c writes it — <c>"kvm-%d"</c> in
/// kvm_create_vm, <c>"kvm-%d/vcpu-%d"</c> in kvm_vcpu_init — with task_pid_nr(current), the id of the thread that
/// created the VM or vCPU (probed: a VM created on a second thread reads "kvm-&lt;its tid&gt;").
/// Only the owning vCPU's thread (under vcpu-&gt;mutex) writes a vCPU's values; readers may see them mid-run, as on Linux.
/// </summary>
internal sealed class KvmStats
{
    private static readonly ConditionalWeakTable<EmulatorConfig, StatsTable[]> Tables = [];

    private readonly ulong[] _values;

    private KvmStats(StatsTable table, string id)
    {
        Table = table;
        _values = new ulong[table.DataBytes / 8];
        Id = id;
        IdBytes = new byte[StatsTable.NameSize];
        Encoding.ASCII.GetBytes(id, IdBytes.AsSpan(0, Math.Min(id.Length, StatsTable.NameSize - 1)));
    }

    public StatsTable Table { get; }

    public string Id { get; }

    /// <summary>The id NUL-padded to KVM_STATS_NAME_SIZE bytes (snprintf into stats_id[KVM_STATS_NAME_SIZE]).</summary>
    public byte[] IdBytes { get; }

    /// <summary>The values as the file's data block shows them.</summary>
    public ReadOnlySpan<byte> Data => MemoryMarshal.AsBytes(_values.AsSpan());

    /// <summary>++stat for the value at <paramref name="slot"/> (-1: a table without that statistic, nothing counted).</summary>
    public void Increment(int slot)
    {
        if (slot >= 0) _values[slot]++;
    }

    /// <summary>stat = <paramref name="value"/> at <paramref name="slot"/> (-1: nothing), for values derived on read.</summary>
    public void Set(int slot, ulong value)
    {
        if (slot >= 0) _values[slot] = value;
    }

    /// <summary>The value at <paramref name="slot"/>, for tests and invariants.</summary>
    public ulong Get(int slot) => slot >= 0 ? _values[slot] : 0;

    /// <summary>kvm_create_vm: "kvm-&lt;tid&gt;".</summary>
    public static KvmStats ForVm(EmulatorConfig config, int tid) => new(TablesOf(config)[0], $"kvm-{tid}");

    /// <summary>kvm_vcpu_init: "kvm-&lt;tid&gt;/vcpu-&lt;id&gt;".</summary>
    public static KvmStats ForVcpu(EmulatorConfig config, int tid, int vcpuId) => new(TablesOf(config)[1], $"kvm-{tid}/vcpu-{vcpuId}");

    private static StatsTable[] TablesOf(EmulatorConfig config) =>
        Tables.GetValue(config, c => [StatsTables.Vm(c), StatsTables.Vcpu(c)]);
}
