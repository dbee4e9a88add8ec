// The parameter form's own words. Labels, help and choice names of operation parameters are not here: each
// op's Params model carries them (x-zhike metadata, core/ui.py) and ops.js registers them when the ops load.
import { useCss } from "./dom.js";
import { addStrings } from "./i18n.js";

useCss("fields.css"); // the form's own look: colour swatches, the required mark

addStrings({
  zh: {
    "form.more": "更多设置",
    "form.add": "添加",
    "form.remove": "移除",
    "form.auto": "自动",
    "form.default": "默认",
    "form.randomSeed": "随机",
    "form.commaSeparated": "用逗号分隔",
    "form.onePerLine": "每行一条",
    "form.required": "必填",
    "form.requiredMsg": "请填写“{field}”：这一项必填",
    "form.emptyPrompt": "请先写下画面描述：写清想要的画面，例如“白色背景上的青花瓷茶杯”",
    "form.chooseModel": "请选择模型",
    "form.defaultNamed": "默认（{name}）",
    "form.defaultNone": "默认（还没有安装这类模型）",
    "form.notInstalled": "{name}（未安装）",
    "form.colour.transparent": "透明",
    "form.colour.custom": "自定义颜色",
    "form.colour.white": "白色",
    "form.colour.grey": "浅灰",
    "form.colour.black": "黑色",
    "form.colour.red": "红色",
    "form.colour.blue": "蓝色",
    "form.colour.yellow": "黄色",
  },
  en: {
    "form.more": "More settings",
    "form.add": "Add",
    "form.remove": "Remove",
    "form.auto": "Auto",
    "form.default": "Default",
    "form.randomSeed": "Random",
    "form.commaSeparated": "comma-separated",
    "form.onePerLine": "one per line",
    "form.required": "Required",
    "form.requiredMsg": "Fill in “{field}”: it is required",
    "form.emptyPrompt": "Write a prompt first: describe the picture you want, e.g. “a blue-and-white porcelain cup on white”",
    "form.chooseModel": "Choose a model",
    "form.defaultNamed": "Default ({name})",
    "form.defaultNone": "Default (none of this kind installed yet)",
    "form.notInstalled": "{name} (not installed)",
    "form.colour.transparent": "Transparent",
    "form.colour.custom": "Custom colour",
    "form.colour.white": "White",
    "form.colour.grey": "Light grey",
    "form.colour.black": "Black",
    "form.colour.red": "Red",
    "form.colour.blue": "Blue",
    "form.colour.yellow": "Yellow",
  },
});
