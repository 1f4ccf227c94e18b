-- (being written: issue 14) methods merged into the Backend object.
local M = { methods = {} }
return M
