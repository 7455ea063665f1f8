/** The paging options every list command shares, and how a list prints. */
import { type CommandContext, integerOption, type OptionDef, stringOption } from "../command";
import { table } from "../output";

/** `--limit` and `--cursor`. */
export const pageOptions: Record<string, OptionDef> = {
  limit: {
    type: "string",
    value: "<n>",
    description: "Show one page of at most n (1–200) instead of every page",
  },
  cursor: { type: "string", value: "<cursor>", description: "Start at this page's cursor" },
};

/** What a list command prints, for its `--help`. */
export const PAGE_DETAILS =
  "Without --limit or --cursor it lists everything, page after page; --json then prints one " +
  "array. With them it shows one page; --json then prints the API's page object, with " +
  "nextCursor.";

/** The `limit` and `cursor` the user asked for, and whether they asked for one page. */
export function pageRequest(context: CommandContext) {
  const limit = integerOption(context.values, "limit");
  const cursor = stringOption(context.values, "cursor");
  return { params: { limit, cursor }, onePage: limit !== undefined || cursor !== undefined };
}

/**
 * Prints a list: one page with its cursor, or every item. `toRow` makes a table row of an item.
 */
export async function printList<Item, Page extends { nextCursor: string | null }>(
  context: CommandContext,
  spec: {
    page: () => Promise<Page>;
    itemsOf: (page: Page) => Item[];
    all: () => AsyncIterable<Item>;
    header: readonly string[];
    toRow: (item: Item) => string[];
    empty: string;
  },
): Promise<void> {
  const { out } = context;
  let items: Item[];
  let nextCursor: string | null = null;
  if (pageRequest(context).onePage) {
    const page = await spec.page();
    if (out.json) return out.printJson(page);
    items = spec.itemsOf(page);
    nextCursor = page.nextCursor;
  } else {
    items = [];
    for await (const item of spec.all()) items.push(item);
    if (out.json) return out.printJson(items);
  }
  out.line(items.length === 0 ? spec.empty : table(spec.header, items.map(spec.toRow)));
  if (nextCursor !== null) out.note(`More: --cursor ${nextCursor}`);
}
