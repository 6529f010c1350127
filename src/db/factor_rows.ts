// Factor rows sent to the server column by column, for the statement that pairs a factor CSV's
// rows with the stored factors.
import type { PendingQuery, Row } from "postgres";
import type { Classification, FactorValues } from "../handlers/types.ts";
import type { Queryable } from "./connection.ts";
import { numberArray } from "./emissions.ts";

/** What the server needs of a factor row to pair it with the stored factors. */
export interface FactorRowInput {
  readonly dataEntryTypeId: number;
  readonly emissionTypeId: number;
  readonly classification: Classification;
  readonly values: FactorValues;
}

/** A piece of SQL with its parameters, to be interpolated into a statement. */
type Fragment = PendingQuery<Row[]>;

/** `a, b, c` of SQL fragments. */
function commaList(tx: Queryable, parts: readonly Fragment[]): Fragment {
  return parts.reduce((list, part) => tx`${list}, ${part}`);
}

/**
 * The rows as a relation `(n, det, et, cls, vals)`, `n` their 1-based position in `rows`, `cls`
 * and `vals` jsonb equal to what the server parses from `JSON.stringify` of each row's
 * classification and values.
 *
 * Each classification and value column goes as its own array (text for classifications; numeric,
 * and text for a column that holds text), and the server builds each row's objects from them.
 * Compared with two JSON documents (9.5 MB for 50,000 rows, built by the client and parsed whole
 * by the server), this brought a 50,000-row import from 1.24–1.29 s to 0.98–1.01 s unchanged and
 * from 2.95–3.11 s to 2.56–2.68 s fresh (four alternated pairs). The insert of new factors keeps
 * the documents: fed from this relation, its statement cost the server more (1.6 to 1.7 s against
 * 0.9 to 1.0 s for 50,000 rows).
 *
 * Rows are grouped by their classification's keys (a module file holds several dets, whose
 * classifications have other columns), so that a key is present in a row's classification exactly
 * when the row has it, null or not. A value column a row lacks is left out of its values (values
 * are never null: a blank cell is no value).
 */
export function factorRowsRelation(tx: Queryable, rows: readonly FactorRowInput[]): Fragment {
  // Rows by the keys of their classification (most files: one shape).
  const shapes = new Map<string, { keys: string[]; indexes: number[] }>();
  for (let index = 0; index < rows.length; index++) {
    let shape = "";
    for (const key in rows[index].classification) shape += `${key}\u0000`;
    const group = shapes.get(shape);
    if (group) group.indexes.push(index);
    else {
      shapes.set(shape, { keys: Object.keys(rows[index].classification), indexes: [index] });
    }
  }
  const selects = [...shapes.values()].map(({ keys: classKeys, indexes }) => {
    // The value columns of these rows, in first-seen order, and whether one holds text.
    const valueKeys = new Map<string, { text: boolean }>();
    for (const i of indexes) {
      const values = rows[i].values;
      for (const key in values) {
        let seen = valueKeys.get(key);
        if (!seen) valueKeys.set(key, seen = { text: false });
        if (typeof values[key] === "string") seen.text = true;
      }
    }
    const args: Fragment[] = [
      tx`${indexes.map((i) => i + 1)}::int[]`,
      tx`${indexes.map((i) => rows[i].dataEntryTypeId)}::int[]`,
      tx`${indexes.map((i) => rows[i].emissionTypeId)}::int[]`,
    ];
    const aliases: Fragment[] = [tx`n`, tx`det`, tx`et`];
    const cls: Fragment[] = [];
    classKeys.forEach((key, k) => {
      args.push(tx`${indexes.map((i) => rows[i].classification[key] ?? null)}::text[]`);
      aliases.push(tx`${tx(`c${k}`)}`);
      cls.push(tx`${key}::text, u.${tx(`c${k}`)}`);
    });
    const vals: Fragment[] = [];
    [...valueKeys].forEach(([key, { text }], k) => {
      const numbers = indexes.map((i) => {
        const value = rows[i].values[key];
        return typeof value === "number" ? value : null;
      });
      args.push(tx`${numberArray(numbers)}::text::numeric[]`);
      aliases.push(tx`${tx(`v${k}`)}`);
      if (text) {
        const texts = indexes.map((i) => {
          const value = rows[i].values[key];
          return typeof value === "string" ? value : null;
        });
        args.push(tx`${texts}::text[]`);
        aliases.push(tx`${tx(`t${k}`)}`);
        vals.push(
          tx`${key}::text, coalesce(to_jsonb(u.${tx(`v${k}`)}), to_jsonb(u.${tx(`t${k}`)}))`,
        );
      } else {
        vals.push(tx`${key}::text, to_jsonb(u.${tx(`v${k}`)})`);
      }
    });
    const clsObject = cls.length ? tx`jsonb_build_object(${commaList(tx, cls)})` : tx`'{}'::jsonb`;
    const valsObject = vals.length
      ? tx`jsonb_strip_nulls(jsonb_build_object(${commaList(tx, vals)}))`
      : tx`'{}'::jsonb`;
    return tx`
      select u.n, u.det, u.et, ${clsObject} as cls, ${valsObject} as vals
      from unnest(${commaList(tx, args)}) as u(${commaList(tx, aliases)})`;
  });
  return selects.length
    ? selects.reduce((all, select) => tx`${all} union all ${select}`)
    : tx`select null::int as n, null::int as det, null::int as et, null::jsonb as cls,
        null::jsonb as vals where false`;
}
