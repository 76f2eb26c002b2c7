--! Previous: sha1:376bf8ea2ed5f578fd3d9c078ceaa24867723486
--! Hash: sha1:51b46b1c45aaa30272d018bf32384c391290b0ed

-- Free text refused by the CLI and the import (control, line-separator and text-direction
-- characters) is refused by the database too, for a SKU's title and the maintenance message.
-- NOT VALID: rows written before are kept as they are.
alter table skus add constraint skus_title_safe check (is_safe_text(title)) not valid;
alter table maintenance add constraint maintenance_message_safe check (is_safe_text(message)) not valid;
