import Database from "better-sqlite3";
import { drizzle } from "drizzle-orm/better-sqlite3";
import * as schema from "./schema";

/** Open the app database (read-only) as a Drizzle client with every table and relation. */
export function openDatabase(path: string) {
  const sqlite = new Database(path, { readonly: true, fileMustExist: true });
  return drizzle(sqlite, { schema });
}

export type AppDatabase = ReturnType<typeof openDatabase>;
