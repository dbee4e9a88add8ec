// The parameter form's own words. Labels, help and choice names of operation parameters are not here: each
// op's Params model carries them (x-zhike metadata, core/ui.py) and ops.js registers them when the ops load.
import { addStrings } from "./i18n.js";

addStrings({
  zh: {
    "form.more": "更多设置",
    "form.add": "添加",
    "form.remove": "移除",
    "form.auto": "自动",
    "form.default": "默认",
    "form.randomSeed": "随机",
    "form.commaSeparated": "用逗号分隔",
  },
  en: {
    "form.more": "More settings",
    "form.add": "Add",
    "form.remove": "Remove",
    "form.auto": "Auto",
    "form.default": "Default",
    "form.randomSeed": "Random",
    "form.commaSeparated": "comma-separated",
  },
});
