// The fixtures that `seed` and `demo` read, in the code: imported as text, so that the bundle
// and the binary carry them (fixtures/ stays the source of truth; a test checks that every file
// of fixtures/factors, fixtures/reference and fixtures/demo is here with its exact text).
import f0 from "../../fixtures/demo/changes.json" with { type: "text" };
import f1 from "../../fixtures/demo/it.csv" with { type: "text" };
import f2 from "../../fixtures/demo/member.csv" with { type: "text" };
import f3 from "../../fixtures/demo/plane.csv" with { type: "text" };
import f4 from "../../fixtures/factors/2024/additional_purchases.csv" with { type: "text" };
import f5 from "../../fixtures/factors/2024/building.csv" with { type: "text" };
import f6 from "../../fixtures/factors/2024/building_embodied_energy.csv" with { type: "text" };
import f7 from "../../fixtures/factors/2024/energy_combustion.csv" with { type: "text" };
import f8 from "../../fixtures/factors/2024/equipment.csv" with { type: "text" };
import f9 from "../../fixtures/factors/2024/external_ai.csv" with { type: "text" };
import f10 from "../../fixtures/factors/2024/external_clouds.csv" with { type: "text" };
import f11 from "../../fixtures/factors/2024/member.csv" with { type: "text" };
import f12 from "../../fixtures/factors/2024/plane.csv" with { type: "text" };
import f13 from "../../fixtures/factors/2024/process_emissions.csv" with { type: "text" };
import f14 from "../../fixtures/factors/2024/purchase_common.csv" with { type: "text" };
import f15 from "../../fixtures/factors/2024/student.csv" with { type: "text" };
import f16 from "../../fixtures/factors/2024/train.csv" with { type: "text" };
import f17 from "../../fixtures/factors/2025/additional_purchases.csv" with { type: "text" };
import f18 from "../../fixtures/factors/2025/building.csv" with { type: "text" };
import f19 from "../../fixtures/factors/2025/building_embodied_energy.csv" with { type: "text" };
import f20 from "../../fixtures/factors/2025/energy_combustion.csv" with { type: "text" };
import f21 from "../../fixtures/factors/2025/equipment.csv" with { type: "text" };
import f22 from "../../fixtures/factors/2025/external_ai.csv" with { type: "text" };
import f23 from "../../fixtures/factors/2025/external_clouds.csv" with { type: "text" };
import f24 from "../../fixtures/factors/2025/member.csv" with { type: "text" };
import f25 from "../../fixtures/factors/2025/plane.csv" with { type: "text" };
import f26 from "../../fixtures/factors/2025/process_emissions.csv" with { type: "text" };
import f27 from "../../fixtures/factors/2025/purchase_common.csv" with { type: "text" };
import f28 from "../../fixtures/factors/2025/student.csv" with { type: "text" };
import f29 from "../../fixtures/factors/2025/train.csv" with { type: "text" };
import f30 from "../../fixtures/reference/locations.csv" with { type: "text" };
import f31 from "../../fixtures/reference/rates.csv" with { type: "text" };
import f32 from "../../fixtures/reference/rooms.csv" with { type: "text" };

/** Every embedded fixture: its path under `fixtures/` → its text. */
export const FIXTURE_FILES: ReadonlyMap<string, string> = new Map([
  ["demo/changes.json", f0],
  ["demo/it.csv", f1],
  ["demo/member.csv", f2],
  ["demo/plane.csv", f3],
  ["factors/2024/additional_purchases.csv", f4],
  ["factors/2024/building.csv", f5],
  ["factors/2024/building_embodied_energy.csv", f6],
  ["factors/2024/energy_combustion.csv", f7],
  ["factors/2024/equipment.csv", f8],
  ["factors/2024/external_ai.csv", f9],
  ["factors/2024/external_clouds.csv", f10],
  ["factors/2024/member.csv", f11],
  ["factors/2024/plane.csv", f12],
  ["factors/2024/process_emissions.csv", f13],
  ["factors/2024/purchase_common.csv", f14],
  ["factors/2024/student.csv", f15],
  ["factors/2024/train.csv", f16],
  ["factors/2025/additional_purchases.csv", f17],
  ["factors/2025/building.csv", f18],
  ["factors/2025/building_embodied_energy.csv", f19],
  ["factors/2025/energy_combustion.csv", f20],
  ["factors/2025/equipment.csv", f21],
  ["factors/2025/external_ai.csv", f22],
  ["factors/2025/external_clouds.csv", f23],
  ["factors/2025/member.csv", f24],
  ["factors/2025/plane.csv", f25],
  ["factors/2025/process_emissions.csv", f26],
  ["factors/2025/purchase_common.csv", f27],
  ["factors/2025/student.csv", f28],
  ["factors/2025/train.csv", f29],
  ["reference/locations.csv", f30],
  ["reference/rates.csv", f31],
  ["reference/rooms.csv", f32],
]);
