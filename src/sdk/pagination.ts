import { SwitchboardError } from "./errors";

/**
 * Every item of a list, page after page: starts at `cursor` (the first page when absent) and
 * follows `nextCursor` until it is `null`. Pages are fetched as the iteration reaches them, so
 * breaking out of a `for await` stops fetching.
 */
export async function* eachItem<Page extends { nextCursor: string | null }, Item>(
  fetchPage: (cursor: string | undefined) => Promise<Page>,
  itemsOf: (page: Page) => readonly Item[],
  cursor?: string,
): AsyncGenerator<Item, void, undefined> {
  let next = cursor;
  do {
    const page = await fetchPage(next);
    yield* itemsOf(page);
    // A cursor that points back at its own page would loop forever.
    if (page.nextCursor !== null && page.nextCursor === next) {
      throw new SwitchboardError({
        code: "unexpected_response",
        detail: `The list answered the same cursor it was given (${next}); stopping`,
      });
    }
    next = page.nextCursor ?? undefined;
  } while (next !== undefined);
}
